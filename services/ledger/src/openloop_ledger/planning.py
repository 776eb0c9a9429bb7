"""Applies a batch of requests, event after event, to an in-memory view of the ledger.

The writer (:mod:`openloop_ledger.writes`) loads what a batch can touch (the ``*_named``
helpers say what), asks a :class:`TransferBatch` what each request does, and writes the
outcome in one transaction. Planning is pure: the same requests against the same view at
the same ``now`` always give the same results, so a batch can be planned again cheaply.

The semantics are TigerBeetle's, with the deviations ``resources.proto`` documents: linked
chains, two-phase transfers with timeouts, balancing and closing transfers, per-account
balance history. The rules themselves live in :mod:`openloop_ledger.validation`; this
module composes them in precedence order and keeps the books.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from openloop_ledger.model import (
    AccountSpec,
    AccountState,
    Balances,
    BalanceSnapshot,
    Resolution,
    Transfer,
    TransferFlags,
    TransferSpec,
    expiry_id,
)
from openloop_ledger.validation import (
    A,
    AccountResult,
    T,
    TransferResult,
    balancing_amount,
    check_account,
    check_pending_reference,
    check_pending_state,
    check_resolution_accounts,
    check_totals,
    check_transfer_accounts,
    check_transfer_fields,
    check_transfer_id,
    compare_transfer,
    is_expired,
    is_lookup_id,
    is_well_formed_id,
    resolves_pending,
)

_OK = T.CREATE_TRANSFER_RESULT_OK
_VOID = TransferFlags(void_pending_transfer=True)


# Linked chains ----------------------------------------------------------------------------


def _runs(linked: Sequence[bool]) -> tuple[list[tuple[int, int]], int]:
    """Split a request into runs that succeed or fail as one: single events and linked chains.

    Returns the runs as ``(start, stop)`` slices, and the index of the event that answers
    LINKED_EVENT_CHAIN_OPEN: the request's last event when it has ``linked`` (its chain never
    closes), else -1. As in TigerBeetle, that open chain is still tried event by event, so an
    event in it that fails for a reason of its own is answered with that reason; the chain
    then fails as a whole, its last event always with CHAIN_OPEN.
    """
    runs: list[tuple[int, int]] = []
    start = 0
    for index, is_linked in enumerate(linked):
        if not is_linked:
            runs.append((start, index + 1))
            start = index + 1
    if start < len(linked):
        runs.append((start, len(linked)))
        return runs, len(linked) - 1
    return runs, -1


# Accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountPlan:
    results: list[AccountResult]
    """One result per submitted account, in request order."""
    created: list[AccountSpec]
    """The accounts to insert, in request order."""


def plan_accounts(specs: Sequence[AccountSpec], existing: Mapping[str, AccountSpec]) -> AccountPlan:
    """Results of creating ``specs`` (one request) given the ``existing`` accounts they name.

    An account created earlier in the request counts as existing for a later one with the
    same id. A linked chain is created whole or not at all.
    """
    known = dict(existing)
    results: list[AccountResult] = [A.CREATE_ACCOUNT_RESULT_UNSPECIFIED] * len(specs)
    created: list[AccountSpec] = []
    runs, chain_open_at = _runs([spec.linked for spec in specs])
    for start, stop in runs:
        mark = len(created)
        for index in range(start, stop):
            spec = specs[index]
            if index == chain_open_at:
                outcome = A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_CHAIN_OPEN
            else:
                outcome = check_account(spec, known.get(spec.id))
            results[index] = outcome
            if outcome != A.CREATE_ACCOUNT_RESULT_OK:
                for undone in created[mark:]:
                    del known[undone.id]
                del created[mark:]
                for other in range(start, stop):
                    if other != index:
                        results[other] = A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_FAILED
                if chain_open_at == stop - 1:
                    results[chain_open_at] = A.CREATE_ACCOUNT_RESULT_LINKED_EVENT_CHAIN_OPEN
                break
            known[spec.id] = spec
            created.append(spec)
    return AccountPlan(results, created)


def account_ids_named(specs: Iterable[AccountSpec]) -> list[str]:
    """Well-formed ids of the accounts in a request, sorted: the ones the store looks up."""
    return sorted({spec.id for spec in specs if is_well_formed_id(spec.id)})


# What the store loads for a transfer batch ------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What a batch starts from: the rows the writer read for it, under the journal lock."""

    accounts: Mapping[str, AccountState]
    """Every existing account an event names, directly or through its pending transfer."""
    transfers: Mapping[str, Transfer]
    """Every recorded transfer whose id an event uses as its id or pending_id (and, for an
    expiry, the pending transfers and their expiry ids)."""
    resolutions: Mapping[str, Resolution]
    """How the recorded pending transfers among ``transfers`` were resolved; absent means
    still pending."""


def transfer_ids_named(specs: Iterable[TransferSpec], *, expiring: Iterable[str] = ()) -> list[str]:
    """Transfer ids a batch may find recorded, sorted: the events' ids and pending_ids.

    ``expiring`` are the pending ids the batch will ``expire``; their expiry ids come along.
    Each distinct id is checked once; a malformed one names nothing.
    """
    ids: set[str] = set()
    add = ids.add
    for spec in specs:
        add(spec.id)
        if spec.pending_id:
            add(spec.pending_id)
    named = set(filter(is_well_formed_id, ids))
    for pending_id in expiring:
        if is_well_formed_id(pending_id):
            named.update((pending_id, expiry_id(pending_id)))
    return sorted(named)


def accounts_named(specs: Iterable[TransferSpec]) -> list[str]:
    """Well-formed debit and credit account ids of the events, sorted.

    A post or void may name no accounts; the store adds those of the pending transfers it
    loaded with :func:`accounts_of`.
    """
    ids: set[str] = set()
    add = ids.add
    for spec in specs:
        add(spec.debit_account_id)
        add(spec.credit_account_id)
    return sorted(filter(is_well_formed_id, ids))


def accounts_of(transfers: Iterable[Transfer]) -> list[str]:
    """The accounts of recorded transfers, sorted: for the pending transfers a batch loaded."""
    ids: set[str] = set()
    for transfer in transfers:
        ids.add(transfer.spec.debit_account_id)
        ids.add(transfer.spec.credit_account_id)
    return sorted(ids)


# The batch --------------------------------------------------------------------------------


class _Live:
    """An account's mutable copy while a batch plans (cheaper to update than a frozen one)."""

    __slots__ = (
        "closed",
        "credits_must_not_exceed_debits",
        "credits_pending",
        "credits_posted",
        "debits_must_not_exceed_credits",
        "debits_pending",
        "debits_posted",
        "history",
        "id",
        "ledger",
        "state",
    )

    def __init__(self, state: AccountState) -> None:
        spec = state.spec
        balances = state.balances
        self.state = state
        self.id = spec.id
        self.ledger = spec.ledger
        self.history = spec.flags.history
        self.debits_must_not_exceed_credits = spec.flags.debits_must_not_exceed_credits
        self.credits_must_not_exceed_debits = spec.flags.credits_must_not_exceed_debits
        self.closed = state.closed
        self.debits_pending = balances.debits_pending
        self.debits_posted = balances.debits_posted
        self.credits_pending = balances.credits_pending
        self.credits_posted = balances.credits_posted

    def balances(self) -> Balances:
        return Balances(
            self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted
        )

    def saved(self) -> tuple[int, int, int, int, bool]:
        return (
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
            self.closed,
        )

    def restore(self, saved: tuple[int, int, int, int, bool]) -> None:
        (
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
            self.closed,
        ) = saved


class _Undo:
    """What a linked chain changed so far, to take it back if a later event fails."""

    __slots__ = ("accepted", "accounts", "history", "timeouts")

    def __init__(self, accepted: int, history: int, timeouts: int) -> None:
        self.accepted = accepted
        self.history = history
        self.timeouts = timeouts
        self.accounts: dict[str, tuple[int, int, int, int, bool]] = {}


class TransferBatch:
    """One database transaction's worth of requests, applied one request after the other.

    Later requests see what earlier ones did, including the transfer ids they recorded.
    After the last request the store writes ``accepted``, ``changed_accounts()``,
    ``history``, ``timeouts`` and ``resolved``. A view that lacks the accounts of a pending
    transfer a post, void or expiry resolves is the store's bug: it raises LookupError.
    """

    def __init__(self, view: LedgerView, now: datetime) -> None:
        self.view = view
        self.now = now
        """The batch's clock: every accepted transfer's create_time, and what expiry is
        judged by."""
        self.accepted: list[Transfer] = []
        """Transfers to record, in the order they were applied (``position`` is -1)."""
        self.history: list[BalanceSnapshot] = []
        """After each accepted transfer, its debit then its credit account's balances, for
        accounts with ``history``."""
        self.resolved: dict[str, Resolution] = {}
        """Pending transfer ids this batch posted, voided or expired."""
        self.timeouts: list[tuple[str, datetime]] = []
        """Pending transfers accepted with a timeout, and when they expire. (One may also be
        in ``resolved`` if a later request of the batch resolved it.)"""
        self._live: dict[str, _Live] = {}
        self._added: dict[str, Transfer] = {}
        self._undo: _Undo | None = None
        self._expiries: dict[int, datetime] = {}

    # What the store calls ---------------------------------------------------------------

    def apply(self, specs: Sequence[TransferSpec]) -> list[TransferResult]:
        """Apply one client request; returns one result per event, in request order.

        A linked chain ends within its request: one whose last event has ``linked`` fails.
        """
        results: list[TransferResult] = [T.CREATE_TRANSFER_RESULT_UNSPECIFIED] * len(specs)
        runs, chain_open_at = _runs([spec.flags.linked for spec in specs])
        create = self._create
        for start, stop in runs:
            if stop - start == 1 and start != chain_open_at:
                results[start] = create(specs[start])
            else:
                self._apply_chain(specs, start, stop, results, chain_open_at)
        return results

    def expire(self, pending_ids: Sequence[str]) -> int:
        """Record an expiry for each of ``pending_ids`` still pending whose timeout passed.

        The expiry is a void with id ``model.expiry_id(pending_id)``: it releases the
        reserved amount and reopens accounts the pending transfer closed. Ids that are
        unknown, resolved or not yet due are skipped. Returns how many expired.
        """
        expired = 0
        for pending_id in pending_ids:
            pending = self._recorded(pending_id) if is_lookup_id(pending_id) else None
            if (
                pending is None
                or not pending.spec.flags.pending
                or self._resolution(pending_id) is not None
                or not is_expired(pending, self.now)
                or self._recorded(expiry_id(pending_id)) is not None
            ):
                continue
            p = pending.spec
            void = TransferSpec(
                id=expiry_id(pending_id),
                debit_account_id=p.debit_account_id,
                credit_account_id=p.credit_account_id,
                amount=p.amount,
                ledger=p.ledger,
                code=p.code,
                user_data="",
                flags=_VOID,
                pending_id=pending_id,
            )
            debit = self._pending_account(p.debit_account_id, pending_id)
            credit = self._pending_account(p.credit_account_id, pending_id)
            self._resolve(void, p, debit, credit, amount=p.amount, resolution=Resolution.EXPIRED)
            expired += 1
        return expired

    def changed_accounts(self) -> list[AccountState]:
        """The final state of every account whose balances or closed flag changed, by id."""
        return [
            AccountState(self._live[account_id].state.spec, Balances(dp, dq, cp, cq), closed)
            for account_id, dp, dq, cp, cq, closed in self.changed_totals()
        ]

    def changed_totals(self) -> list[tuple[str, int, int, int, int, bool]]:
        """``changed_accounts()`` as plain rows ``(id, debits_pending, debits_posted,
        credits_pending, credits_posted, closed)``: what the store writes, without building
        an object per account on the hot path."""
        changed = []
        for account_id in sorted(self._live):
            live = self._live[account_id]
            state = live.state
            row = (
                account_id,
                live.debits_pending,
                live.debits_posted,
                live.credits_pending,
                live.credits_posted,
                live.closed,
            )
            before = state.balances
            if (
                row[1] != before.debits_pending
                or row[2] != before.debits_posted
                or row[3] != before.credits_pending
                or row[4] != before.credits_posted
                or live.closed != state.closed
            ):
                changed.append(row)
        return changed

    # One event --------------------------------------------------------------------------

    def _create(self, spec: TransferSpec) -> TransferResult:
        result = check_transfer_id(spec)
        if result is not None:
            return result
        recorded = self._added.get(spec.id) or self.view.transfers.get(spec.id)
        if recorded is not None:
            return self._compare(spec, recorded.spec)
        result = check_transfer_fields(spec)
        if result is not None:
            return result
        flags = spec.flags
        if resolves_pending(flags):
            return self._post_or_void(spec)
        live = self._live
        debit = live.get(spec.debit_account_id) or self._account(spec.debit_account_id)
        if debit is None:
            return T.CREATE_TRANSFER_RESULT_DEBIT_ACCOUNT_NOT_FOUND
        credit = live.get(spec.credit_account_id) or self._account(spec.credit_account_id)
        if credit is None:
            return T.CREATE_TRANSFER_RESULT_CREDIT_ACCOUNT_NOT_FOUND
        result = check_transfer_accounts(spec, debit, credit)
        if result is not None:
            return result
        amount = spec.amount
        if flags.balancing_debit or flags.balancing_credit:
            amount = balancing_amount(spec, debit, credit)
            spec = replace(spec, amount=amount)
        result = check_totals(flags.pending, amount, debit, credit)
        if result is not None:
            return result
        self._move(spec, debit, credit)
        return _OK

    def _move(self, spec: TransferSpec, debit: _Live, credit: _Live) -> None:
        """Apply an accepted transfer that neither posts nor voids."""
        undo = self._undo
        if undo is not None:
            self._save(undo, debit)
            self._save(undo, credit)
        amount = spec.amount
        flags = spec.flags
        if flags.pending:
            debit.debits_pending += amount
            credit.credits_pending += amount
            if flags.closing_debit:
                debit.closed = True
            if flags.closing_credit:
                credit.closed = True
            if spec.timeout:
                self.timeouts.append((spec.id, self._expires_at(spec.timeout)))
        else:
            debit.debits_posted += amount
            credit.credits_posted += amount
        self._record(spec, debit, credit)

    def _compare(self, spec: TransferSpec, recorded: TransferSpec) -> TransferResult:
        """EXISTS or EXISTS_WITH_DIFFERENT_*: a post or void that leaves its amount 0 or
        its user_data empty (the pending transfer's) is compared with the pending transfer
        it resolved."""
        pending = None
        if recorded.pending_id and not (spec.amount and spec.user_data):
            found = self._recorded(recorded.pending_id)
            pending = None if found is None else found.spec
        return compare_transfer(spec, recorded, pending)

    def _post_or_void(self, spec: TransferSpec) -> TransferResult:
        pending_id = spec.pending_id
        pending = self._recorded(pending_id)
        if pending is None:
            return T.CREATE_TRANSFER_RESULT_PENDING_TRANSFER_NOT_FOUND
        p = pending.spec
        result = check_pending_reference(spec, p)
        if result is not None:
            return result
        result = check_pending_state(self._resolution(pending_id), is_expired(pending, self.now))
        if result is not None:
            return result
        debit = self._pending_account(p.debit_account_id, pending_id)
        credit = self._pending_account(p.credit_account_id, pending_id)
        result = check_resolution_accounts(spec.flags, p.flags, debit, credit)
        if result is not None:
            return result
        if spec.flags.post_pending_transfer:
            amount = spec.amount or p.amount
            self._resolve(spec, p, debit, credit, amount=amount, resolution=Resolution.POSTED)
        else:
            self._resolve(spec, p, debit, credit, amount=p.amount, resolution=Resolution.VOIDED)
        return _OK

    def _resolve(
        self,
        spec: TransferSpec,
        pending: TransferSpec,
        debit: _Live,
        credit: _Live,
        *,
        amount: int,
        resolution: Resolution,
    ) -> None:
        """Post ``amount`` of ``pending`` (releasing the rest), or void or expire all of it."""
        undo = self._undo
        if undo is not None:
            self._save(undo, debit)
            self._save(undo, credit)
        debit.debits_pending -= pending.amount
        credit.credits_pending -= pending.amount
        if resolution is Resolution.POSTED:
            debit.debits_posted += amount
            credit.credits_posted += amount
        else:
            if pending.flags.closing_debit:
                debit.closed = False
            if pending.flags.closing_credit:
                credit.closed = False
        self.resolved[pending.id] = resolution
        recorded = TransferSpec(  # positional: cheaper than keywords on this hot path
            spec.id,
            pending.debit_account_id,
            pending.credit_account_id,
            amount,
            pending.ledger,
            pending.code,
            spec.user_data or pending.user_data,
            spec.flags,
            spec.pending_id,
        )
        self._record(recorded, debit, credit)

    def _record(self, spec: TransferSpec, debit: _Live, credit: _Live) -> None:
        transfer = Transfer(spec, self.now, -1)
        self._added[spec.id] = transfer
        self.accepted.append(transfer)
        if debit.history:
            self.history.append(BalanceSnapshot(debit.id, spec.id, debit.balances()))
        if credit.history:
            self.history.append(BalanceSnapshot(credit.id, spec.id, credit.balances()))

    # Linked chains ----------------------------------------------------------------------

    def _apply_chain(
        self,
        specs: Sequence[TransferSpec],
        start: int,
        stop: int,
        results: list[TransferResult],
        chain_open_at: int,
    ) -> None:
        undo = _Undo(len(self.accepted), len(self.history), len(self.timeouts))
        self._undo = undo
        try:
            for index in range(start, stop):
                if index == chain_open_at:
                    outcome = T.CREATE_TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN
                else:
                    outcome = self._create(specs[index])
                if outcome != _OK:
                    self._rollback(undo)
                    for other in range(start, stop):
                        results[other] = T.CREATE_TRANSFER_RESULT_LINKED_EVENT_FAILED
                    results[index] = outcome
                    if chain_open_at == stop - 1:
                        results[chain_open_at] = T.CREATE_TRANSFER_RESULT_LINKED_EVENT_CHAIN_OPEN
                    return
                results[index] = outcome
        finally:
            self._undo = None

    @staticmethod
    def _save(undo: _Undo, live: _Live) -> None:
        if live.id not in undo.accounts:
            undo.accounts[live.id] = live.saved()

    def _rollback(self, undo: _Undo) -> None:
        for transfer in self.accepted[undo.accepted :]:
            del self._added[transfer.spec.id]
            if transfer.spec.pending_id:
                del self.resolved[transfer.spec.pending_id]
        del self.accepted[undo.accepted :]
        del self.history[undo.history :]
        del self.timeouts[undo.timeouts :]
        for account_id, saved in undo.accounts.items():
            self._live[account_id].restore(saved)

    # Lookups ----------------------------------------------------------------------------

    def _account(self, account_id: str) -> _Live | None:
        live = self._live.get(account_id)
        if live is None:
            state = self.view.accounts.get(account_id)
            if state is None:
                return None
            live = self._live[account_id] = _Live(state)
        return live

    def _expires_at(self, timeout: int) -> datetime:
        expires_at = self._expiries.get(timeout)
        if expires_at is None:
            expires_at = self._expiries[timeout] = self.now + timedelta(seconds=timeout)
        return expires_at

    def _pending_account(self, account_id: str, pending_id: str) -> _Live:
        live = self._account(account_id)
        if live is None:
            raise LookupError(
                f"the view lacks account {account_id!r} of pending transfer {pending_id!r}"
            )
        return live

    def _recorded(self, transfer_id: str) -> Transfer | None:
        transfer = self._added.get(transfer_id)
        if transfer is None:
            transfer = self.view.transfers.get(transfer_id)
        return transfer

    def _resolution(self, pending_id: str) -> Resolution | None:
        resolution = self.resolved.get(pending_id)
        if resolution is None:
            resolution = self.view.resolutions.get(pending_id)
        return resolution

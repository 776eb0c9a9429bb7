"""Balances recomputed from the journal alone, the way an auditor re-derives them.

Independent of :mod:`openloop_ledger.planning`: it trusts nothing but the
recorded transfers (whose amounts, accounts and flags are already resolved) and
applies each one's effect in journal order. The pending transfers it holds at the
end are the unresolved ones: :mod:`openloop_ledger.audit.timeouts` checks the
``pending_timeouts`` rows against them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

_PENDING = 1 << 1
_POST = 1 << 2
_VOID = 1 << 3
TWO_PHASE = _PENDING | _POST | _VOID
"""Flags of the transfers whose effect depends on others (the rest only add up)."""
_CLOSING_DEBIT = 1 << 6
_CLOSING_CREDIT = 1 << 7


@dataclass(slots=True)
class Totals:
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    closed_by: set[str] = field(default_factory=set)
    """Unresolved closing pending transfers that hold the account closed."""


@dataclass(frozen=True, slots=True)
class _Pending:
    amount: int
    debit: str
    credit: str
    flags: int
    position: int
    timeout: int
    create_time: int | datetime
    """As the source gives it: microseconds since the Unix epoch, or a datetime."""


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A pending transfer with a timeout that nothing has posted, voided or expired."""

    transfer_id: str
    position: int
    timeout: int
    create_time: int | datetime


class Replay:
    def __init__(self) -> None:
        self.accounts: dict[str, Totals] = {}
        self._pending: dict[str, _Pending] = {}
        self.problems: list[str] = []

    def totals(self, account_id: str) -> Totals:
        totals = self.accounts.get(account_id)
        if totals is None:
            totals = self.accounts[account_id] = Totals()
        return totals

    def apply(  # noqa: PLR0917 - positional for the verifier's hot loop
        self,
        transfer_id: str,
        debit: str,
        credit: str,
        amount: int,
        flags: int,
        pending_id: str | None,
        position: int = -1,
        timeout: int = 0,
        create_time: int | datetime = 0,
    ) -> None:
        """Apply one transfer; ``position``, ``timeout`` and ``create_time`` matter only for
        a pending transfer (see :meth:`unresolved_with_timeout`)."""
        accounts = self.accounts
        d = accounts.get(debit) or self.totals(debit)
        c = accounts.get(credit) or self.totals(credit)
        if flags & (_POST | _VOID):
            pending = self._pending.pop(pending_id or "", None)
            if pending is None:
                self.problems.append(
                    f"transfer {transfer_id!r} resolves {pending_id!r}, which is not pending"
                )
                return
            if (debit, credit) != (pending.debit, pending.credit):
                self.problems.append(
                    f"transfer {transfer_id!r} resolves {pending_id!r} between other accounts"
                )
            if amount > pending.amount or (flags & _VOID and amount != pending.amount):
                self.problems.append(
                    f"transfer {transfer_id!r} resolves {amount} of {pending_id!r}, "
                    f"which reserved {pending.amount}"
                )
            d.debits_pending -= pending.amount
            c.credits_pending -= pending.amount
            if flags & _POST:
                d.debits_posted += amount
                c.credits_posted += amount
            else:
                d.closed_by.discard(pending_id)
                c.closed_by.discard(pending_id)
            return
        if flags & _PENDING:
            self._pending[transfer_id] = _Pending(
                amount, debit, credit, flags, position, timeout, create_time
            )
            d.debits_pending += amount
            c.credits_pending += amount
            if flags & _CLOSING_DEBIT:
                d.closed_by.add(transfer_id)
            if flags & _CLOSING_CREDIT:
                c.closed_by.add(transfer_id)
            return
        d.debits_posted += amount
        c.credits_posted += amount

    def unresolved_with_timeout(self) -> Iterator[Unresolved]:
        """The pending transfers replayed so far that have a timeout and that no post or
        void (an expiry is a void) has resolved, in journal order: once the whole journal
        is replayed, each must have its ``pending_timeouts`` row, or its hold never ends."""
        for transfer_id, pending in self._pending.items():
            timeout = pending.timeout
            if type(timeout) is int and timeout > 0:  # an export's row may hold anything
                yield Unresolved(transfer_id, pending.position, timeout, pending.create_time)

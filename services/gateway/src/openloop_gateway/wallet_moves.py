"""A citizen's wallet moving to the participant that asks for it, balance and history included.

The order is chosen so that nothing is lost or moved twice whatever fails:

1. validate the request (INVALID_ARGUMENT, nothing stored);
2. store the move PENDING under the caller's idempotency key (the gateway's move id is also
   identity's, so every later step can be retried);
3. identity *begins* the move on the citizen's assertion and freezes the wallet: from here no
   payment can spend from it. A refusal (a forged assertion, a wallet already hosted by the
   caller) is returned with identity's reason and the stored move is discarded: nothing
   changed anywhere;
4. the ledger opens the wallet's new account at the caller and, in one linked chain, moves the
   whole balance out of the old account by a pending *balancing* transfer that also *closes*
   the old account, then posts it. The old account keeps its history and can never move money
   again; a payment verified just before the freeze fails on it cleanly;
5. settlement records the obligation of the old participant to the caller for that balance
   (an old participant's position falls by what it no longer holds, the caller's rises);
6. identity *completes* the move: the caller hosts the wallet and its new account.

Every step after 3 is idempotent (the ledger by transfer id, settlement by transfer id, identity
by move name), so a retry with the same key or the reconciler drives a begun move to COMPLETED
exactly once. A move is never abandoned once begun: it only waits for its upstreams.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import grpc

from openloop.gateway.v1 import service_pb2
from openloop.ledger.v1 import resources_pb2 as ledger_resources
from openloop_gateway.accounts import AccountCode, TransferCode
from openloop_gateway.defects import pending_defect
from openloop_gateway.idempotency import idempotency_key
from openloop_gateway.upstreams import Upstreams
from openloop_gateway.wallet_move_store import MoveRecord, MoveState, MoveStore
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field, reason_name
from openloop_runtime.money import LEDGER_THB
from openloop_runtime.names import format_name, parse_name
from openloop_runtime.telemetry import current_trace_id

_log = logging.getLogger(__name__)

MAX_ASSERTION_LENGTH = 16 * 1024
MOVE_WHOLE_BALANCE = 2**63 - 1
"""The amount of a balancing transfer that moves everything the account holds."""
_T = ledger_resources.CreateTransferResult
_A = ledger_resources.CreateAccountResult
_TRANSFER_APPLIED = frozenset({_T.CREATE_TRANSFER_RESULT_OK, _T.CREATE_TRANSFER_RESULT_EXISTS})
_ACCOUNT_OPEN = frozenset({_A.CREATE_ACCOUNT_RESULT_OK, _A.CREATE_ACCOUNT_RESULT_EXISTS})
BEGIN_MARGIN = timedelta(minutes=2)
"""How long before a move may be abandoned the gateway stops asking identity to begin it:
far more than any call's deadline (at most half the grace period)."""


def move_name(wallet_move_id: str) -> str:
    return format_name("walletMoves", wallet_move_id)


def _request_hash(request: service_pb2.MoveWalletRequest) -> str:
    """Covers the assertion, which is never stored, so a retry must resend the same one."""
    canonical = "\x1f".join([request.wallet, request.identity_assertion])
    return hashlib.sha256(canonical.encode()).hexdigest()


def failure_error(record: MoveRecord) -> DomainError:
    """The error MoveWallet returns for a FAILED move, the same on every replay."""
    return DomainError.from_wire(
        grpc.StatusCode.FAILED_PRECONDITION,
        record.failure_reason,
        record.failure_message,
        {"wallet_move": move_name(record.wallet_move_id)},
    )


class WalletMoveFlow:
    def __init__(
        self, store: MoveStore, upstreams: Upstreams, *, abandon_unbegun_after: timedelta
    ) -> None:
        self._store = store
        self._upstreams = upstreams
        self._abandon_unbegun_after = abandon_unbegun_after

    async def move(self, participant_id: str, request: service_pb2.MoveWalletRequest) -> MoveRecord:
        key = idempotency_key(request.idempotency_key)
        citizen_id = parse_name(request.wallet, "citizens", field="wallet", suffix="/wallet")
        assertion = request.identity_assertion
        if not assertion or len(assertion) > MAX_ASSERTION_LENGTH:
            raise invalid_field(
                "identity_assertion",
                f"identity_assertion must be an ID token of 1 to {MAX_ASSERTION_LENGTH} characters",
            )
        request_hash = _request_hash(request)
        existing = await self._store.find_by_key(participant_id, key)
        if existing is None:
            new = MoveRecord(
                wallet_move_id="w" + secrets.token_hex(12),
                participant_id=participant_id,
                idempotency_key=key,
                request_hash=request_hash,
                citizen=format_name("citizens", citizen_id),
                state=MoveState.PENDING,
                trace_id=current_trace_id(),
            )
            existing = await self._store.insert(new)  # a racing request's, if it won
        if existing.request_hash != request_hash:
            raise DomainError(
                grpc.StatusCode.INVALID_ARGUMENT,
                ErrorReason.ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
                "this idempotency key was used for a different wallet move",
                {"field": "idempotency_key", "wallet_move": move_name(existing.wallet_move_id)},
            )
        return await self.advance(existing, assertion)

    async def advance(self, record: MoveRecord, assertion: str | None = None) -> MoveRecord:
        """Drive a move to its final state; raise its error if that state is FAILED.

        ``assertion`` is the citizen's token from the request; the reconciler has none, so it
        can only carry on a move identity already began."""
        if record.state is MoveState.PENDING:
            try:
                record = await self._drive(record, assertion)
            except DomainError as error:
                error.metadata.setdefault("wallet_move", move_name(record.wallet_move_id))
                raise
        if record.state is MoveState.FAILED:
            raise failure_error(record)
        return record

    async def _drive(self, record: MoveRecord, assertion: str | None) -> MoveRecord:
        if not record.begun:
            record = await self._begin(record, assertion)
            if not record.begun:
                return record
        amount = record.amount_satang
        if amount is None:
            amount = await self._move_balance(record)
            record = await self._store.update(
                record, amount_satang=amount, ledger_transfer_id=_transfer_id(record)
            )
        if amount > 0:
            try:
                await self._upstreams.record_transfer(
                    record.ledger_transfer_id,
                    format_name("participants", record.from_participant_id),
                    format_name("participants", record.participant_id),
                    amount,
                )
            except DomainError as error:
                if error.code != grpc.StatusCode.UNAVAILABLE:
                    # The balance moved; settlement refusing it is our defect, not the bank's.
                    _log.error(
                        "settlement refused a wallet move",
                        extra={"wallet_move_id": record.wallet_move_id, "reason": error.reason},
                    )
                    raise _defect("settlement", record) from error
                raise
        await self._upstreams.complete_wallet_move(record.identity_move_name)
        completed = await self._store.update(record, state=MoveState.COMPLETED.value)
        _log.info(
            "wallet moved",
            extra={"wallet_move_id": record.wallet_move_id, "amount_satang": amount},
        )
        return completed

    async def _begin(self, record: MoveRecord, assertion: str | None) -> MoveRecord:
        """Identity's begun move, recorded; or, from the reconciler for a move identity does not
        know, the move unchanged (or FAILED once it is old: see ``_abandon_if_old``).

        Only the reconciler gives up on a move identity does not know, and only once its grace
        period is over; a bank's retry close to that moment only looks, never begins. Else a
        begin identity committed just after the reconciler found nothing would freeze the
        wallet for a move the gateway had declared FAILED, which nothing would ever drive."""
        if assertion is None or self._too_late_to_begin(record):
            move = await self._upstreams.find_wallet_move(record.identity_move_name)
            if move is None:
                abandoned = await self._abandon_if_old(record)
                if assertion is not None and abandoned.state is MoveState.PENDING:
                    raise _too_late_to_begin(abandoned)
                return abandoned
        else:
            try:
                move = await self._upstreams.begin_wallet_move(
                    record.citizen,
                    record.wallet_move_id,
                    format_name("participants", record.participant_id),
                    assertion,
                )
            except DomainError as error:
                if error.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL):
                    # The request cannot be met and identity changed nothing: forget it, as
                    # if it had failed validation, so the bank may correct it under the key.
                    await self._store.discard(record)
                raise
        return await self._store.update(
            record,
            begun=True,
            from_participant_id=parse_name(move.from_participant, "participants"),
            from_account=move.from_account,
            to_account=move.to_account,
        )

    def _too_late_to_begin(self, record: MoveRecord) -> bool:
        """Past the last moment a begin may be sent: far more than any call's deadline before
        the reconciler may abandon the move, so no begin is in flight when it does."""
        created = record.create_time or datetime.now(UTC)
        margin = min(BEGIN_MARGIN, self._abandon_unbegun_after / 2)
        return datetime.now(UTC) - created >= self._abandon_unbegun_after - margin

    async def _abandon_if_old(self, record: MoveRecord) -> MoveRecord:
        """A move identity never began: its request died before identity answered. After a
        grace period far longer than any request's deadline it is FAILED (nothing moved); the
        bank sends a new request."""
        created = record.create_time or datetime.now(UTC)
        if datetime.now(UTC) - created < self._abandon_unbegun_after:
            return record
        return await self._store.update(
            record,
            state=MoveState.FAILED.value,
            failure_reason=reason_name(ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE),
            failure_message="the move was never begun (identity did not answer); nothing "
            "moved: send a new request with a new key",
        )

    async def _move_balance(self, record: MoveRecord) -> int:
        """Open the new account, move everything the old one holds and close it; return the
        amount moved (0 if the wallet never had a ledger account)."""
        old = await self._upstreams.lookup_account(record.from_account)
        new_account = ledger_resources.Account(
            id=record.to_account,
            ledger=old.ledger if old else LEDGER_THB,
            code=old.code if old else AccountCode.CITIZEN_WALLET,
            flags=_open_flags(old),
            user_data=old.user_data if old else record.citizen,
            participant=format_name("participants", record.participant_id),
        )
        opened = await self._upstreams.create_account(new_account)
        if opened not in _ACCOUNT_OPEN:
            _log.error(
                "ledger refused a moved wallet's account",
                extra={
                    "wallet_move_id": record.wallet_move_id,
                    "ledger_result": _A.Name(opened),
                },
            )
            raise _defect("ledger", record)
        if old is None:
            return 0
        transfer_id = _transfer_id(record)
        results = await self._upstreams.create_transfers(
            [
                ledger_resources.Transfer(
                    id=transfer_id,
                    debit_account_id=record.from_account,
                    credit_account_id=record.to_account,
                    amount=MOVE_WHOLE_BALANCE,
                    ledger=new_account.ledger,
                    code=TransferCode.WALLET_MOVE,
                    user_data=move_name(record.wallet_move_id),
                    flags=ledger_resources.TransferFlags(
                        linked=True, pending=True, balancing_debit=True, closing_debit=True
                    ),
                ),
                ledger_resources.Transfer(
                    id=f"{transfer_id}:post",
                    pending_id=transfer_id,
                    flags=ledger_resources.TransferFlags(post_pending_transfer=True),
                ),
            ]
        )
        if not _chain_applied(results):
            _log.error(
                "ledger refused a wallet move",
                extra={
                    "wallet_move_id": record.wallet_move_id,
                    "ledger_results": ",".join(_T.Name(r) for r in results),
                },
            )
            raise _defect("ledger", record)
        moved = await self._upstreams.lookup_transfer(transfer_id)
        assert moved is not None  # just applied
        return moved.amount


def _chain_applied(results: Sequence[ledger_resources.CreateTransferResult.ValueType]) -> bool:
    """Whether the ledger holds the move's linked chain, applied now or by an earlier try.

    A chain sent again after its answer was lost (a deadline, a crash) is answered as
    TigerBeetle answers it: ``EXISTS`` fails the chain at its first event, so the rest are
    ``LINKED_EVENT_FAILED`` without being tried. The chain is atomic and its first event
    exists with the same fields, so the whole chain was applied, and the move carries on
    (settlement, identity) rather than stay frozen with its balance moved."""
    first, *rest = results
    if first == _T.CREATE_TRANSFER_RESULT_EXISTS and all(
        result == _T.CREATE_TRANSFER_RESULT_LINKED_EVENT_FAILED for result in rest
    ):
        return True
    return all(result in _TRANSFER_APPLIED for result in results)


def _transfer_id(record: MoveRecord) -> str:
    return f"move:{record.wallet_move_id}"


def _open_flags(old: ledger_resources.Account | None) -> ledger_resources.AccountFlags:
    """The old account's behaviour (limits, history), open: the new one replaces it."""
    if old is None:
        return ledger_resources.AccountFlags(debits_must_not_exceed_credits=True)
    flags = ledger_resources.AccountFlags()
    flags.CopyFrom(old.flags)
    flags.closed = False
    return flags


def _too_late_to_begin(record: MoveRecord) -> DomainError:
    return DomainError(
        grpc.StatusCode.UNAVAILABLE,
        ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        "identity never began this move and it is too late to begin it now: nothing moved, "
        "and the move will be FAILED within minutes; poll GetWalletMove, then send a new "
        "request with a new key",
        {"upstream": "identity", "wallet_move": move_name(record.wallet_move_id)},
    )


def _defect(upstream: str, record: MoveRecord) -> DomainError:
    return pending_defect(
        upstream, "the wallet move", "wallet_move", move_name(record.wallet_move_id)
    )

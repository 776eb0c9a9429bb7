"""Turns requests into the ledger's values, refusing malformed requests as a whole.

A malformed request (too many events, a participant that is not a resource
name, output fields a client tried to set) is INVALID_ARGUMENT for the whole
call: it is a bug in the caller. Everything that depends on the ledger's state,
or that TigerBeetle reports per event, is left to the per-event result codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from openloop.ledger.v1 import resources_pb2, service_pb2
from openloop_ledger import paging
from openloop_ledger.model import (
    NO_FLAGS,
    TRANSFER_FLAG_NAMES,
    AccountFlags,
    AccountSpec,
    TransferFlags,
    TransferSpec,
)
from openloop_ledger.store import AccountFilter
from openloop_ledger.validation import is_well_formed_id
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.names import parse_name
from openloop_runtime.text import bounded_text

MAX_BATCH = 8189
"""Events per request, as in TigerBeetle."""
MAX_USER_DATA = 256
"""Characters of ``user_data``: a resource name or reference, not a document."""

_ACCOUNT_OUTPUTS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


def check_batch_size(size: int, field: str, *, allow_empty: bool = False) -> None:
    if size > MAX_BATCH:
        raise DomainError(
            grpc.StatusCode.INVALID_ARGUMENT,
            ErrorReason.ERROR_REASON_BATCH_TOO_LARGE,
            f"{field} holds {size} items; at most {MAX_BATCH} are accepted per request",
            {"field": field, "max": str(MAX_BATCH)},
        )
    if size == 0 and not allow_empty:
        raise invalid_field(field, f"{field} must not be empty")


def _check_user_data(user_data: str, field: str) -> None:
    bounded_text(user_data, field=field, max_length=MAX_USER_DATA)


def account_specs(request: service_pb2.CreateAccountsRequest) -> list[AccountSpec]:
    check_batch_size(len(request.accounts), "accounts")
    return [_account_spec(account, f"accounts[{i}]") for i, account in enumerate(request.accounts)]


def _account_spec(account: resources_pb2.Account, field: str) -> AccountSpec:
    for total in _ACCOUNT_OUTPUTS:
        if getattr(account, total):
            raise invalid_field(
                f"{field}.{total}", f"{field}.{total} is kept by the ledger; leave it zero"
            )
    if account.HasField("create_time"):
        raise invalid_field(f"{field}.create_time", f"{field}.create_time is set by the ledger")
    _check_user_data(account.user_data, f"{field}.user_data")
    participant_id = parse_name(account.participant, "participants", field=f"{field}.participant")
    flags = account.flags
    return AccountSpec(
        id=account.id,
        ledger=account.ledger,
        code=account.code,
        flags=AccountFlags(
            debits_must_not_exceed_credits=flags.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=flags.credits_must_not_exceed_debits,
            history=flags.history,
            closed=flags.closed,
        ),
        user_data=account.user_data,
        participant_id=participant_id,
        linked=flags.linked,
    )


def transfer_specs(
    request: service_pb2.CreateTransfersRequest | service_pb2.StreamingCreateTransfersRequest,
) -> list[TransferSpec]:
    check_batch_size(len(request.transfers), "transfers")
    return [_transfer_spec(t, i) for i, t in enumerate(request.transfers)]


def _transfer_spec(transfer: resources_pb2.Transfer, index: int) -> TransferSpec:
    user_data = transfer.user_data
    # One test for the usual case; the field names are built only to explain a refusal.
    if (
        len(user_data) > MAX_USER_DATA
        or "\x00" in user_data
        or transfer.position
        or transfer.HasField("create_time")
    ):
        _refuse_transfer(transfer, f"transfers[{index}]")
    return TransferSpec(
        id=transfer.id,
        debit_account_id=transfer.debit_account_id,
        credit_account_id=transfer.credit_account_id,
        amount=transfer.amount,
        ledger=transfer.ledger,
        code=transfer.code,
        user_data=user_data,
        flags=_transfer_flags(transfer.flags) if transfer.HasField("flags") else NO_FLAGS,
        pending_id=transfer.pending_id,
        timeout=transfer.timeout,
    )


def _refuse_transfer(transfer: resources_pb2.Transfer, field: str) -> None:
    _check_user_data(transfer.user_data, f"{field}.user_data")
    if transfer.position:
        raise invalid_field(f"{field}.position", f"{field}.position is set by the ledger")
    if transfer.HasField("create_time"):
        raise invalid_field(f"{field}.create_time", f"{field}.create_time is set by the ledger")


def _transfer_flags(flags: resources_pb2.TransferFlags) -> TransferFlags:
    return TransferFlags(*(getattr(flags, name) for name in TRANSFER_FLAG_NAMES))


def lookup_ids(ids: Sequence[str]) -> list[str]:
    """Ids to look up; an empty list is a valid question with an empty answer."""
    check_batch_size(len(ids), "ids", allow_empty=True)
    return list(ids)


def account_filter(message: service_pb2.AccountFilter) -> AccountFilter:
    if not message.account_id:
        raise invalid_field("filter.account_id", "filter.account_id is required")
    if not is_well_formed_id(message.account_id):
        raise invalid_field(
            "filter.account_id", "filter.account_id is not 1-64 characters of [A-Za-z0-9._:-]"
        )
    return AccountFilter(
        account_id=message.account_id,
        debits=message.debits,
        credits=message.credits,
        reversed=message.reversed,
    )


def page_size(requested: int) -> int:
    return paging.page_size(requested)


MAX_POSITION = 2**63 - 1
"""Journal positions and tree sizes are PostgreSQL BIGINTs."""


def position(value: int, field: str) -> int:
    """A journal position or tree size from the wire (uint64), refused past BIGINT."""
    if value > MAX_POSITION:
        raise invalid_field(field, f"{field} must be at most {MAX_POSITION}")
    return value

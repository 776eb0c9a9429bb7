"""Turns requests into the ledger's values, refusing malformed requests as a whole.

A malformed request (too many events, a participant that is not a resource
name, balances a client tried to set) is INVALID_ARGUMENT for the whole call: it
is a bug in the caller. Everything that depends on the ledger's state, or that
TigerBeetle reports per event, is left to the per-event result codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from openloop.ledger.v1 import resources_pb2, service_pb2
from openloop_ledger.model import AccountFlags, AccountSpec, TransferSpec
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.names import parse_name
from openloop_runtime.text import bounded_text

MAX_BATCH = 8189
"""Events per request, as in TigerBeetle, so a later slice can batch the same way."""
MAX_USER_DATA = 256
"""Characters of ``user_data``: a resource name or reference, not a document."""


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
    for total in ("debits_posted", "credits_posted"):
        if getattr(account, total):
            raise invalid_field(
                f"{field}.{total}", f"{field}.{total} is kept by the ledger; leave it zero"
            )
    _check_user_data(account.user_data, f"{field}.user_data")
    participant_id = parse_name(account.participant, "participants", field=f"{field}.participant")
    return AccountSpec(
        id=account.id,
        ledger=account.ledger,
        code=account.code,
        flags=AccountFlags(
            debits_must_not_exceed_credits=account.flags.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=account.flags.credits_must_not_exceed_debits,
        ),
        user_data=account.user_data,
        participant_id=participant_id,
    )


def transfer_specs(request: service_pb2.CreateTransfersRequest) -> list[TransferSpec]:
    check_batch_size(len(request.transfers), "transfers")
    specs: list[TransferSpec] = []
    for i, transfer in enumerate(request.transfers):
        _check_user_data(transfer.user_data, f"transfers[{i}].user_data")
        specs.append(
            TransferSpec(
                id=transfer.id,
                debit_account_id=transfer.debit_account_id,
                credit_account_id=transfer.credit_account_id,
                amount=transfer.amount,
                ledger=transfer.ledger,
                code=transfer.code,
                user_data=transfer.user_data,
            )
        )
    return specs


def lookup_ids(ids: Sequence[str]) -> list[str]:
    """Ids to look up; an empty list is a valid question with an empty answer."""
    check_batch_size(len(ids), "ids", allow_empty=True)
    return list(ids)

"""Turns the ledger's values into their protobuf messages."""

from __future__ import annotations

from openloop.ledger.v1 import resources_pb2
from openloop_ledger.model import TRANSFER_FLAG_NAMES, Account, Transfer
from openloop_ledger.store import BalanceEntry
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import to_timestamp


def account_message(account: Account) -> resources_pb2.Account:
    state = account.state
    spec = state.spec
    balances = state.balances
    return resources_pb2.Account(
        id=spec.id,
        ledger=spec.ledger,
        code=spec.code,
        flags=resources_pb2.AccountFlags(
            debits_must_not_exceed_credits=spec.flags.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=spec.flags.credits_must_not_exceed_debits,
            history=spec.flags.history,
            closed=state.closed,
        ),
        user_data=spec.user_data,
        participant=format_name("participants", spec.participant_id),
        debits_pending=balances.debits_pending,
        debits_posted=balances.debits_posted,
        credits_pending=balances.credits_pending,
        credits_posted=balances.credits_posted,
        create_time=to_timestamp(account.create_time),
    )


def transfer_message(transfer: Transfer) -> resources_pb2.Transfer:
    spec = transfer.spec
    flags = spec.flags
    return resources_pb2.Transfer(
        id=spec.id,
        debit_account_id=spec.debit_account_id,
        credit_account_id=spec.credit_account_id,
        amount=spec.amount,
        ledger=spec.ledger,
        code=spec.code,
        user_data=spec.user_data,
        flags=resources_pb2.TransferFlags(
            **{name: getattr(flags, name) for name in TRANSFER_FLAG_NAMES}
        ),
        pending_id=spec.pending_id,
        timeout=spec.timeout,
        position=transfer.position,
        create_time=to_timestamp(transfer.create_time),
    )


def balance_message(entry: BalanceEntry) -> resources_pb2.AccountBalance:
    b = entry.balances
    return resources_pb2.AccountBalance(
        debits_pending=b.debits_pending,
        debits_posted=b.debits_posted,
        credits_pending=b.credits_pending,
        credits_posted=b.credits_posted,
        transfer_id=entry.transfer_id,
        position=entry.position,
        create_time=to_timestamp(entry.create_time),
    )

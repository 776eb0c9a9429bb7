"""Turns the ledger's values into their protobuf messages."""

from __future__ import annotations

from openloop.ledger.v1 import resources_pb2
from openloop_ledger.model import Account, Transfer
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import to_timestamp


def account_message(account: Account) -> resources_pb2.Account:
    spec = account.spec
    return resources_pb2.Account(
        id=spec.id,
        ledger=spec.ledger,
        code=spec.code,
        flags=resources_pb2.AccountFlags(
            debits_must_not_exceed_credits=spec.flags.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=spec.flags.credits_must_not_exceed_debits,
        ),
        user_data=spec.user_data,
        participant=format_name("participants", spec.participant_id),
        debits_posted=account.debits_posted,
        credits_posted=account.credits_posted,
        create_time=to_timestamp(account.create_time),
    )


def transfer_message(transfer: Transfer) -> resources_pb2.Transfer:
    spec = transfer.spec
    return resources_pb2.Transfer(
        id=spec.id,
        debit_account_id=spec.debit_account_id,
        credit_account_id=spec.credit_account_id,
        amount=spec.amount,
        ledger=spec.ledger,
        code=spec.code,
        user_data=spec.user_data,
        create_time=to_timestamp(transfer.create_time),
    )

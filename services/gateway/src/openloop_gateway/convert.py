"""Stored payments and wallet moves to their public protobuf form."""

from __future__ import annotations

from openloop.gateway.v1 import resources_pb2
from openloop_gateway.store import PaymentRecord
from openloop_gateway.wallet_move_store import MoveRecord
from openloop_gateway.wallet_moves import move_name
from openloop_runtime.money import thb
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import to_timestamp


def payment_to_proto(record: PaymentRecord) -> resources_pb2.Payment:
    payment = resources_pb2.Payment(
        name=format_name("payments", record.payment_id),
        idempotency_key=record.idempotency_key,
        payer=record.payer,
        payee=record.payee,
        amount=thb(record.amount_satang),
        state=resources_pb2.PaymentState.Value(f"PAYMENT_STATE_{record.state.value}"),
        payer_participant=format_name("participants", record.participant_id),
        payee_participant=format_name("participants", record.payee_participant_id)
        if record.payee_participant_id
        else "",
        ledger_transfer_id=record.ledger_transfer_id,
        rule_set_version=record.rule_set_version,
        trace_id=record.trace_id,
    )
    failure = record.failure
    if failure is not None:
        payment.failure.CopyFrom(
            resources_pb2.PaymentFailure(
                reason=failure.reason,
                rule_id=failure.rule_id,
                rule_reason=failure.rule_reason,
                message=failure.message,
            )
        )
    if record.create_time is not None:
        payment.create_time.CopyFrom(to_timestamp(record.create_time))
    if record.update_time is not None:
        payment.update_time.CopyFrom(to_timestamp(record.update_time))
    return payment


def wallet_move_to_proto(record: MoveRecord) -> resources_pb2.WalletMove:
    move = resources_pb2.WalletMove(
        name=move_name(record.wallet_move_id),
        idempotency_key=record.idempotency_key,
        wallet=f"{record.citizen}/wallet",
        state=resources_pb2.WalletMoveState.Value(f"WALLET_MOVE_STATE_{record.state.value}"),
        from_participant=format_name("participants", record.from_participant_id)
        if record.from_participant_id
        else "",
        to_participant=format_name("participants", record.participant_id),
        from_account=record.from_account,
        to_account=record.to_account,
        ledger_transfer_id=record.ledger_transfer_id,
        trace_id=record.trace_id,
    )
    if record.amount_satang is not None:
        move.amount.CopyFrom(thb(record.amount_satang))
    if record.failure_reason:
        move.failure.CopyFrom(
            resources_pb2.PaymentFailure(
                reason=record.failure_reason, message=record.failure_message
            )
        )
    if record.create_time is not None:
        move.create_time.CopyFrom(to_timestamp(record.create_time))
    if record.update_time is not None:
        move.update_time.CopyFrom(to_timestamp(record.update_time))
    return move

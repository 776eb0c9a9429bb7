"""Turns settlement's values into their protobuf messages."""

from __future__ import annotations

from openloop.settlement.v1 import resources_pb2
from openloop_runtime.money import thb
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import to_timestamp
from openloop_settlement.model import Obligation, Position


def participant_name(participant_id: str) -> str:
    return format_name("participants", participant_id)


def obligation_message(obligation: Obligation) -> resources_pb2.Obligation:
    record = obligation.record
    return resources_pb2.Obligation(
        transfer_id=record.transfer_id,
        debit_participant=participant_name(record.debit_participant_id),
        credit_participant=participant_name(record.credit_participant_id),
        amount=thb(record.amount),
        inter_participant=record.inter_participant,
        record_time=to_timestamp(obligation.record_time),
    )


def position_message(position: Position) -> resources_pb2.Position:
    participant = participant_name(position.participant_id)
    message = resources_pb2.Position(
        name=f"{participant}/position",
        participant=participant,
        net_position=thb(position.net_position),
        transfer_count=position.transfer_count,
    )
    if position.update_time is not None:
        message.update_time.CopyFrom(to_timestamp(position.update_time))
    return message

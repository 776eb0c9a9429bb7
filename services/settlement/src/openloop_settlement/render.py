"""Turns settlement's values into their protobuf messages."""

from __future__ import annotations

from openloop.settlement.v1 import resources_pb2
from openloop_runtime.money import thb
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import to_timestamp
from openloop_settlement.model import (
    CyclePosition,
    CycleState,
    Obligation,
    Position,
    SettlementCycle,
)
from openloop_settlement.parse import CYCLES

_STATES = {
    CycleState.OPEN: resources_pb2.SettlementCycle.STATE_OPEN,
    CycleState.CLOSED: resources_pb2.SettlementCycle.STATE_CLOSED,
    CycleState.SETTLED: resources_pb2.SettlementCycle.STATE_SETTLED,
}


def participant_name(participant_id: str) -> str:
    return format_name("participants", participant_id)


def cycle_name(cycle_id: int) -> str:
    return format_name(CYCLES, str(cycle_id))


def obligation_message(obligation: Obligation) -> resources_pb2.Obligation:
    record = obligation.record
    cycle = cycle_name(obligation.cycle_id)
    return resources_pb2.Obligation(
        name=f"{cycle}/obligations/{record.transfer_id}",
        cycle=cycle,
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
        unsettled_position=thb(position.unsettled_position),
        unsettled_cycle_count=position.unsettled_cycle_count,
    )
    if position.update_time is not None:
        message.update_time.CopyFrom(to_timestamp(position.update_time))
    return message


def cycle_message(cycle: SettlementCycle) -> resources_pb2.SettlementCycle:
    message = resources_pb2.SettlementCycle(
        name=cycle_name(cycle.cycle_id),
        state=_STATES[cycle.state],
        open_time=to_timestamp(cycle.open_time),
    )
    if cycle.close_time is not None:
        message.close_time.CopyFrom(to_timestamp(cycle.close_time))
    if cycle.settle_time is not None:
        message.settle_time.CopyFrom(to_timestamp(cycle.settle_time))
    if cycle.cutoff_time is not None:
        message.cutoff_time.CopyFrom(to_timestamp(cycle.cutoff_time))
    message.closed_by = cycle.closed_by or ""
    message.settled_by = cycle.settled_by or ""
    return message


def cycle_position_message(position: CyclePosition) -> resources_pb2.CyclePosition:
    participant = participant_name(position.participant_id)
    message = resources_pb2.CyclePosition(
        name=f"{cycle_name(position.cycle_id)}/positions/{position.participant_id}",
        participant=participant,
        net_position=thb(position.net_position),
        transfer_count=position.transfer_count,
    )
    if position.update_time is not None:
        message.update_time.CopyFrom(to_timestamp(position.update_time))
    return message

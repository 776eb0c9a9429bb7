"""Reads shared by the recording path and the read APIs, and rows turned into values."""

from __future__ import annotations

from sqlalchemy import Select, func, select, true
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openloop_settlement.model import (
    CyclePosition,
    CycleState,
    Obligation,
    SettlementCycle,
    TransferRecord,
)
from openloop_settlement.tables import cycle_positions, obligations, positions, settlement_cycles

_unsettled = (
    select(
        func.coalesce(func.sum(cycle_positions.c.net_position), 0).label("unsettled_position"),
        func.count().filter(cycle_positions.c.net_position != 0).label("unsettled_cycle_count"),
    )
    .select_from(
        cycle_positions.join(
            settlement_cycles, cycle_positions.c.cycle_id == settlement_cycles.c.cycle_id
        )
    )
    .where(
        cycle_positions.c.participant_id == positions.c.participant_id,
        settlement_cycles.c.state != CycleState.SETTLED.value,
    )
    .lateral("unsettled")
)

LIFETIME_POSITIONS: Select[tuple[object, ...]] = select(
    positions, _unsettled.c.unsettled_position, _unsettled.c.unsettled_cycle_count
).select_from(positions.join(_unsettled, true()))
"""Lifetime positions with their unsettled part, read in one statement (one snapshot), so
the two figures always belong together."""


async def obligation(
    conn: AsyncConnection, cycle_id: int | None, transfer_id: str
) -> Obligation | None:
    """The obligation recorded under ``transfer_id``, if it is in ``cycle_id`` (any cycle
    when ``None``)."""
    query = select(obligations).where(obligations.c.transfer_id == transfer_id)
    if cycle_id is not None:
        query = query.where(obligations.c.cycle_id == cycle_id)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else obligation_of(row)


def obligation_of(row: Row[tuple[object, ...]]) -> Obligation:
    return Obligation(
        TransferRecord(
            transfer_id=row.transfer_id,
            debit_participant_id=row.debit_participant_id,
            credit_participant_id=row.credit_participant_id,
            amount=row.amount,
        ),
        row.record_time,
        row.cycle_id,
    )


def cycle_of(row: Row[tuple[object, ...]]) -> SettlementCycle:
    return SettlementCycle(
        cycle_id=row.cycle_id,
        state=CycleState(row.state),
        open_time=row.open_time,
        close_time=row.close_time,
        settle_time=row.settle_time,
        close_request_id=row.close_request_id,
        settle_request_id=row.settle_request_id,
        closed_by=row.closed_by,
        settled_by=row.settled_by,
        cutoff_time=row.cutoff_time,
    )


def cycle_position_of(row: Row[tuple[object, ...]]) -> CyclePosition:
    return CyclePosition(
        cycle_id=row.cycle_id,
        participant_id=row.participant_id,
        net_position=row.net_position,
        transfer_count=row.transfer_count,
        update_time=row.update_time,
    )

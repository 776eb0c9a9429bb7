"""Settlement cycles: closing the OPEN one (and opening the next), marking one SETTLED, and
reading them.

Every recording holds the OPEN cycle's row ``FOR SHARE`` for its whole transaction
(``store.py``), which also holds ``settlement_cycles`` in ROW SHARE mode. A close first locks
the table in EXCLUSIVE mode, which conflicts with ROW SHARE only: it waits until the
recordings already stamped with the cycle have committed, and recordings that arrive later
queue behind it and land in the next cycle. Plain reads of cycles go on meanwhile. The close
then takes the row ``FOR UPDATE``, flips it to CLOSED and inserts the next OPEN cycle in the
same transaction: at no moment is there no OPEN cycle, and never two (a unique index holds
the one). It is cheap (two row writes and a sum over the cycle's few positions), so
recordings wait only that long.

The table lock is what makes the close fair. ``FOR UPDATE`` on the row alone would never be
granted under a steady flow of payments: PostgreSQL lets a new ``FOR SHARE`` join a row's
existing share lockers without queueing behind a waiting ``FOR UPDATE``, so while any
recording is in flight the close waits, and one always is (the concurrency test shows the
close timing out that way). Table locks queue in order, so the close gets its turn.

A changed cycle's request id is stored with it, and who made the change (the operator's
``actor``, or the cut-off scheduler's, in ``closed_by`` / ``settled_by``) in the same update;
the retry of a change finds it there, and leaves the actor of the first request recorded. The
row lock is taken before the request id is looked up, so two requests for one change are
ordered by the lock and the second always sees what the first did.

Times are the database clock at the change (``clock_timestamp()``, not the transaction's
start, which for a close that waited on recordings would be too early). Which cycle an
obligation belongs to is its stamp, never its ``record_time``: a recording that began before
the cut may be stamped with the next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_settlement import errors
from openloop_settlement.model import CycleState, SettlementCycle
from openloop_settlement.queries import cycle_of
from openloop_settlement.tables import cycle_positions, settlement_cycles

_cycles = settlement_cycles.c
_UNIQUE_VIOLATION = "23505"
_STOP_RECORDING = text("LOCK TABLE settlement_cycles IN EXCLUSIVE MODE")


@dataclass(frozen=True, slots=True)
class ClosedCycle:
    cycle: SettlementCycle
    next_cycle_id: int
    """The cycle the close opened: always the closed one's number plus one."""
    replayed: bool = False
    """The request id had already closed this cycle: this call answered that close and
    changed nothing (a retry, or another cut-off scheduler that got there first)."""


class CycleStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def close(
        self, cycle_id: int, request_id: str, actor: str, *, cutoff_time: datetime | None = None
    ) -> ClosedCycle:
        """Close ``cycle_id`` and open the next; ``cutoff_time`` is the scheduled cut-off the
        close stands for, when the scheduler makes it (``cutoffs.py``)."""
        async with self._engine.begin() as conn:
            await conn.execute(_STOP_RECORDING)
            row = await _lock(conn, cycle_id)
            if row.close_request_id == request_id:
                return ClosedCycle(cycle_of(row), cycle_id + 1, replayed=True)
            await _refuse_reused(conn, _cycles.close_request_id, request_id)
            if row.state != CycleState.OPEN:
                raise errors.cycle_state_conflict(
                    cycle_id, CycleState(row.state), "only the OPEN cycle can be closed"
                )
            closed = (
                await conn.execute(
                    update(settlement_cycles)
                    .where(_cycles.cycle_id == cycle_id)
                    .values(
                        state=CycleState.CLOSED.value,
                        close_time=func.clock_timestamp(),
                        close_request_id=request_id,
                        closed_by=actor,
                        cutoff_time=cutoff_time,
                    )
                    .returning(*settlement_cycles.c)
                )
            ).one()
            await conn.execute(
                insert(settlement_cycles).values(
                    cycle_id=cycle_id + 1, state=CycleState.OPEN.value, open_time=closed.close_time
                )
            )
            await _check_balanced(conn, cycle_id)
            return ClosedCycle(cycle_of(closed), cycle_id + 1)

    async def settle(self, cycle_id: int, request_id: str, actor: str) -> SettlementCycle:
        async with self._engine.begin() as conn:
            row = await _lock(conn, cycle_id)
            if row.settle_request_id == request_id:
                return cycle_of(row)
            await _refuse_reused(conn, _cycles.settle_request_id, request_id)
            if row.state != CycleState.CLOSED:
                raise errors.cycle_state_conflict(
                    cycle_id, CycleState(row.state), "only a CLOSED cycle can be settled"
                )
            try:
                settled = (
                    await conn.execute(
                        update(settlement_cycles)
                        .where(_cycles.cycle_id == cycle_id)
                        .values(
                            state=CycleState.SETTLED.value,
                            settle_time=func.clock_timestamp(),
                            settle_request_id=request_id,
                            settled_by=actor,
                        )
                        .returning(*settlement_cycles.c)
                    )
                ).one()
            except IntegrityError as error:
                # The same key settling another cycle at this very moment (the cycles' own
                # locks do not order the two): the key's unique index decides.
                if getattr(error.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
                    raise errors.request_id_reused(request_id, None) from error
                raise
            return cycle_of(settled)

    async def get(self, cycle_id: int) -> SettlementCycle | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(settlement_cycles).where(_cycles.cycle_id == cycle_id))
            ).one_or_none()
        return None if row is None else cycle_of(row)

    async def open_cycle(self) -> SettlementCycle:
        """The OPEN cycle (there is always exactly one)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(settlement_cycles).where(_cycles.state == CycleState.OPEN.value)
                )
            ).one()
        return cycle_of(row)

    async def closed_under(self, request_id: str) -> SettlementCycle | None:
        """The cycle ``request_id`` closed, if it closed one."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(settlement_cycles).where(_cycles.close_request_id == request_id)
                )
            ).one_or_none()
        return None if row is None else cycle_of(row)

    async def newest_before(
        self, before: int | None, limit: int, state: CycleState | None
    ) -> list[SettlementCycle]:
        """Up to ``limit`` cycles, newest first, numbered below ``before``."""
        query = select(settlement_cycles).order_by(_cycles.cycle_id.desc()).limit(limit)
        if before is not None:
            query = query.where(_cycles.cycle_id < before)
        if state is not None:
            query = query.where(_cycles.state == state.value)
        async with self._engine.connect() as conn:
            return [cycle_of(row) for row in await conn.execute(query)]


async def _lock(conn: AsyncConnection, cycle_id: int) -> Row[tuple[object, ...]]:
    row = (
        await conn.execute(
            select(settlement_cycles).where(_cycles.cycle_id == cycle_id).with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise errors.cycle_not_found(cycle_id)
    return row


async def _refuse_reused(conn: AsyncConnection, column: Column[str], request_id: str) -> None:
    other = await conn.scalar(select(_cycles.cycle_id).where(column == request_id))
    if other is not None:
        raise errors.request_id_reused(request_id, other)


async def _check_balanced(conn: AsyncConnection, cycle_id: int) -> None:
    """A closing cycle's positions must sum to zero: every transfer moved two of them by the
    same amount. Anything else is a defect, and the close is rolled back rather than make a
    settlement that does not balance."""
    total = await conn.scalar(
        select(func.coalesce(func.sum(cycle_positions.c.net_position), 0)).where(
            cycle_positions.c.cycle_id == cycle_id
        )
    )
    if total != 0:
        raise RuntimeError(f"settlement cycle {cycle_id} does not balance: {total} satang")

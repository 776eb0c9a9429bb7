"""What a treasury and an auditor read: a cycle's positions and the obligations behind them.

Lists are keyset-paged, each page one statement. A CLOSED or SETTLED cycle's rows never
change (``cycles.py``), so its pages, however far apart in time, are one consistent report;
the OPEN cycle's pages are read live. Obligations are listed in (cycle, transfer id) order.
A participant's obligations are the union of its debits and its credits, each read in that
order from its own index and merged, so a page costs the page, not the participant's history.
"""

from __future__ import annotations

from sqlalchemy import Select, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_settlement import queries
from openloop_settlement.model import CyclePosition, Obligation, ObligationKey
from openloop_settlement.netting import zero_cycle_position
from openloop_settlement.tables import cycle_positions, obligations, settlement_cycles

_o = obligations.c
_p = cycle_positions.c


class ReportStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def cycle_position(self, cycle_id: int, participant_id: str) -> CyclePosition | None:
        """The participant's position in the cycle (zero if untouched); ``None`` when there
        is no such cycle."""
        async with self._engine.connect() as conn:
            if not await _cycle_exists(conn, cycle_id):
                return None
            row = (
                await conn.execute(
                    select(cycle_positions).where(
                        _p.cycle_id == cycle_id, _p.participant_id == participant_id
                    )
                )
            ).one_or_none()
        if row is None:
            return zero_cycle_position(cycle_id, participant_id)
        return queries.cycle_position_of(row)

    async def cycle_positions_after(
        self, cycle_id: int, after: str | None, limit: int
    ) -> list[CyclePosition] | None:
        """Up to ``limit`` of the cycle's positions after participant ``after``; ``None``
        when there is no such cycle."""
        query = (
            select(cycle_positions)
            .where(_p.cycle_id == cycle_id)
            .order_by(_p.participant_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(_p.participant_id > after)
        async with self._engine.connect() as conn:
            if not await _cycle_exists(conn, cycle_id):
                return None
            return [queries.cycle_position_of(row) for row in await conn.execute(query)]

    async def obligation(self, cycle_id: int | None, transfer_id: str) -> Obligation | None:
        async with self._engine.connect() as conn:
            return await queries.obligation(conn, cycle_id, transfer_id)

    async def cycle_exists(self, cycle_id: int) -> bool:
        async with self._engine.connect() as conn:
            return await _cycle_exists(conn, cycle_id)

    async def obligations_after(
        self,
        cycle_id: int | None,
        participant_id: str | None,
        after: ObligationKey | None,
        limit: int,
    ) -> list[Obligation]:
        """Up to ``limit`` obligations after ``after`` in (cycle, transfer id) order, of one
        cycle (every cycle when ``None``), touching one participant (any when ``None``)."""

        def page(query: Select[tuple[object, ...]]) -> Select[tuple[object, ...]]:
            if cycle_id is not None:
                query = query.where(_o.cycle_id == cycle_id)
            if after is not None:
                query = query.where(
                    tuple_(_o.cycle_id, _o.transfer_id) > tuple_(after.cycle_id, after.transfer_id)
                )
            return query.order_by(_o.cycle_id, _o.transfer_id).limit(limit)

        if participant_id is None:
            query = page(select(obligations))
        else:
            merged = union_all(
                page(select(obligations).where(_o.debit_participant_id == participant_id)),
                page(
                    select(obligations).where(
                        _o.credit_participant_id == participant_id,
                        _o.debit_participant_id != participant_id,
                    )
                ),
            ).subquery()
            query = select(merged).order_by(merged.c.cycle_id, merged.c.transfer_id).limit(limit)
        async with self._engine.connect() as conn:
            return [queries.obligation_of(row) for row in await conn.execute(query)]


async def _cycle_exists(conn: AsyncConnection, cycle_id: int) -> bool:
    found = await conn.scalar(
        select(settlement_cycles.c.cycle_id).where(settlement_cycles.c.cycle_id == cycle_id)
    )
    return found is not None

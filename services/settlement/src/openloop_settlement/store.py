"""Records obligations and moves positions, each transfer in one database transaction.

The transfer first shares the lock on the OPEN settlement cycle's row (``FOR SHARE``, which
also holds the cycles table in ROW SHARE mode) and is stamped with that cycle. Closing a
cycle locks the cycles table in EXCLUSIVE mode and then the row ``FOR UPDATE``
(``cycles.py``): it waits for every recording that holds the share, and recordings that come
after it wait for its commit and then find the next cycle. So a transfer lands wholly in one
cycle, and a cycle's obligations and positions stop changing the moment it closes.

The obligation row is then inserted under its unique transfer id. A racing duplicate waits
on that insert and then finds the row (``ON CONFLICT DO NOTHING``), so positions move exactly
once however many times a transfer is recorded, and the cycle it answers is the one the
first recording stamped. Positions, of the cycle and of the participant's lifetime, are then
upserted in participant order, so two transfers touching the same pair of banks never
deadlock.

A position is a BIGINT. A transfer that would take one out of range is refused by the
database in the middle of the transaction, which then rolls back whole (the obligation
included), and is answered FAILED_PRECONDITION (``POSITION_LIMIT_EXCEEDED``): the request is
well formed, the stored position is what refuses it. Which position overflowed is not in
PostgreSQL's error, so it is worked out afterwards from the positions as they stand: no
extra read on the recording path for a refusal that a real program never meets.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_runtime.errors import DomainError
from openloop_settlement import errors, queries
from openloop_settlement.model import Obligation, Position, TransferRecord
from openloop_settlement.netting import position_at_limit, position_changes
from openloop_settlement.tables import cycle_positions, obligations, positions, settlement_cycles

_NUMERIC_VALUE_OUT_OF_RANGE = "22003"
_OPEN_CYCLE_ATTEMPTS = 10

# A transfer's statements, built once: SQLAlchemy finds each one's compiled form by a key it
# already holds. (A multi-row VALUES built per call was compiled on every transfer.)
_SHARE_OPEN_CYCLE = (
    select(settlement_cycles.c.cycle_id)
    .where(settlement_cycles.c.state == "OPEN")
    .with_for_update(read=True)
)
_RECORD = (
    insert(obligations)
    .values(
        transfer_id=bindparam("transfer_id"),
        debit_participant_id=bindparam("debit_participant_id"),
        credit_participant_id=bindparam("credit_participant_id"),
        amount=bindparam("amount"),
        inter_participant=bindparam("inter_participant"),
        cycle_id=bindparam("cycle_id"),
    )
    .on_conflict_do_nothing(index_elements=[obligations.c.transfer_id])
    .returning(obligations.c.record_time)
)
_NEW_POSITION = insert(positions).values(
    participant_id=bindparam("participant_id"),
    net_position=bindparam("net_position"),
    transfer_count=1,
)
_MOVE_POSITION = _NEW_POSITION.on_conflict_do_update(
    index_elements=[positions.c.participant_id],
    set_={
        "net_position": positions.c.net_position + _NEW_POSITION.excluded.net_position,
        "transfer_count": positions.c.transfer_count + 1,
        "update_time": func.now(),
    },
)
_NEW_CYCLE_POSITION = insert(cycle_positions).values(
    cycle_id=bindparam("cycle_id"),
    participant_id=bindparam("participant_id"),
    net_position=bindparam("net_position"),
    transfer_count=1,
)
_MOVE_CYCLE_POSITION = _NEW_CYCLE_POSITION.on_conflict_do_update(
    index_elements=[cycle_positions.c.cycle_id, cycle_positions.c.participant_id],
    set_={
        "net_position": cycle_positions.c.net_position + _NEW_CYCLE_POSITION.excluded.net_position,
        "transfer_count": cycle_positions.c.transfer_count + 1,
        "update_time": func.now(),
    },
)


@dataclass(frozen=True, slots=True)
class Recorded:
    obligation: Obligation
    """The obligation as stored: this request's, or the one recorded before under its id."""
    created: bool
    """False when the transfer id was recorded before, by this request's twin or another."""


class _PositionOutOfRangeError(Exception):
    """A position upsert of the transaction went out of BIGINT's range in ``cycle_id``."""

    def __init__(self, cycle_id: int) -> None:
        super().__init__(cycle_id)
        self.cycle_id = cycle_id


class SettlementStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, record: TransferRecord) -> Recorded:
        try:
            async with self._engine.begin() as conn:
                cycle_id = await _share_open_cycle(conn)
                record_time = await conn.scalar(
                    _RECORD,
                    {
                        "transfer_id": record.transfer_id,
                        "debit_participant_id": record.debit_participant_id,
                        "credit_participant_id": record.credit_participant_id,
                        "amount": record.amount,
                        "inter_participant": record.inter_participant,
                        "cycle_id": cycle_id,
                    },
                )
                if record_time is None:
                    found = await queries.obligation(conn, None, record.transfer_id)
                    assert found is not None, "the conflicting obligation is committed"
                    return Recorded(found, False)
                try:
                    await _move_positions(conn, record, cycle_id)
                except DBAPIError as error:
                    if getattr(error.orig, "sqlstate", None) != _NUMERIC_VALUE_OUT_OF_RANGE:
                        raise
                    raise _PositionOutOfRangeError(cycle_id) from error
                return Recorded(Obligation(record, record_time, cycle_id), True)
        except _PositionOutOfRangeError as overflow:
            # The transaction has rolled back (obligation and positions alike) by now.
            raise await self._limit_exceeded(record, overflow.cycle_id) from overflow.__cause__

    async def _limit_exceeded(self, record: TransferRecord, cycle_id: int) -> DomainError:
        """The refusal of a transfer that would overflow a position, naming the position."""
        changes = position_changes(record)
        ids = [change.participant_id for change in changes]
        async with self._engine.connect() as conn:
            lifetime = await conn.execute(
                select(positions.c.participant_id, positions.c.net_position).where(
                    positions.c.participant_id.in_(ids)
                )
            )
            in_cycle = await conn.execute(
                select(cycle_positions.c.participant_id, cycle_positions.c.net_position).where(
                    cycle_positions.c.cycle_id == cycle_id,
                    cycle_positions.c.participant_id.in_(ids),
                )
            )
            at_limit = position_at_limit(
                changes,
                cycle_id,
                {row.participant_id: row.net_position for row in in_cycle},
                {row.participant_id: row.net_position for row in lifetime},
            )
        return errors.position_limit_exceeded(at_limit)

    async def position(self, participant_id: str) -> Position | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    queries.LIFETIME_POSITIONS.where(positions.c.participant_id == participant_id)
                )
            ).one_or_none()
        return None if row is None else _position(row)

    async def positions_after(self, after: str | None, limit: int) -> list[Position]:
        """Up to ``limit`` positions in participant order, after participant ``after``."""
        query = queries.LIFETIME_POSITIONS.order_by(positions.c.participant_id).limit(limit)
        if after is not None:
            query = query.where(positions.c.participant_id > after)
        async with self._engine.connect() as conn:
            return [_position(row) for row in await conn.execute(query)]


async def _share_open_cycle(conn: AsyncConnection) -> int:
    """The OPEN cycle, its row share-locked until this transaction ends.

    A recording that queued behind a close finds no row: under READ COMMITTED, PostgreSQL
    re-checks the locked row once the close commits, sees it CLOSED, and the statement's
    snapshot predates the next cycle's row. The statement is then run again, with a new
    snapshot that holds the next cycle (and again if yet another close came first).
    """
    for _ in range(_OPEN_CYCLE_ATTEMPTS):
        cycle_id = await conn.scalar(_SHARE_OPEN_CYCLE)
        if cycle_id is not None:
            return int(cycle_id)
    raise RuntimeError("no OPEN settlement cycle to record in")


async def _move_positions(conn: AsyncConnection, record: TransferRecord, cycle_id: int) -> None:
    """Upsert each changed position of the cycle, then of the lifetime, in participant order
    (one executemany each)."""
    changes = position_changes(record)
    if changes:
        await conn.execute(
            _MOVE_CYCLE_POSITION,
            [
                {"cycle_id": cycle_id, "participant_id": c.participant_id, "net_position": c.delta}
                for c in changes
            ],
        )
        await conn.execute(
            _MOVE_POSITION,
            [{"participant_id": c.participant_id, "net_position": c.delta} for c in changes],
        )


def _position(row: Row[tuple[object, ...]]) -> Position:
    return Position(
        participant_id=row.participant_id,
        net_position=row.net_position,
        transfer_count=row.transfer_count,
        update_time=row.update_time,
        unsettled_position=int(row.unsettled_position),
        unsettled_cycle_count=int(row.unsettled_cycle_count),
    )

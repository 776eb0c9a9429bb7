"""Records obligations and moves positions, each transfer in one database transaction.

The obligation row is inserted first under its unique transfer id. A racing
duplicate waits on that insert and then finds the row (``ON CONFLICT DO
NOTHING``), so positions move exactly once however many times a transfer is
recorded. Positions are then upserted in participant order, so two transfers
touching the same pair of banks never deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_runtime.errors import DomainError, ErrorReason
from openloop_settlement.model import Obligation, Position, TransferRecord
from openloop_settlement.netting import position_changes
from openloop_settlement.tables import obligations, positions

_NUMERIC_VALUE_OUT_OF_RANGE = "22003"

# A transfer's two statements, built once: SQLAlchemy finds each one's compiled form by a
# key it already holds. (A multi-row VALUES built per call was compiled on every transfer.)
_RECORD = (
    insert(obligations)
    .values(
        transfer_id=bindparam("transfer_id"),
        debit_participant_id=bindparam("debit_participant_id"),
        credit_participant_id=bindparam("credit_participant_id"),
        amount=bindparam("amount"),
        inter_participant=bindparam("inter_participant"),
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


@dataclass(frozen=True, slots=True)
class Recorded:
    obligation: Obligation
    """The obligation as stored: this request's, or the one recorded before under its id."""
    created: bool
    """False when the transfer id was recorded before, by this request's twin or another."""


class SettlementStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, record: TransferRecord) -> Recorded:
        try:
            async with self._engine.begin() as conn:
                record_time = await conn.scalar(
                    _RECORD,
                    {
                        "transfer_id": record.transfer_id,
                        "debit_participant_id": record.debit_participant_id,
                        "credit_participant_id": record.credit_participant_id,
                        "amount": record.amount,
                        "inter_participant": record.inter_participant,
                    },
                )
                if record_time is None:
                    return Recorded(await _recorded_obligation(conn, record.transfer_id), False)
                await _move_positions(conn, record)
                return Recorded(Obligation(record, record_time), True)
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == _NUMERIC_VALUE_OUT_OF_RANGE:
                raise DomainError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    ErrorReason.ERROR_REASON_INVALID_AMOUNT,
                    "amount would take a participant's net position beyond 64 bits of satang",
                    {"field": "amount.amount_satang"},
                ) from error
            raise

    async def position(self, participant_id: str) -> Position | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(positions).where(positions.c.participant_id == participant_id)
                )
            ).one_or_none()
        return None if row is None else _position(row)

    async def positions_after(self, after: str | None, limit: int) -> list[Position]:
        """Up to ``limit`` positions in participant order, after participant ``after``."""
        query = select(positions).order_by(positions.c.participant_id).limit(limit)
        if after is not None:
            query = query.where(positions.c.participant_id > after)
        async with self._engine.connect() as conn:
            return [_position(row) for row in await conn.execute(query)]


async def _recorded_obligation(conn: AsyncConnection, transfer_id: str) -> Obligation:
    row = (
        await conn.execute(select(obligations).where(obligations.c.transfer_id == transfer_id))
    ).one()
    return Obligation(
        TransferRecord(
            transfer_id=row.transfer_id,
            debit_participant_id=row.debit_participant_id,
            credit_participant_id=row.credit_participant_id,
            amount=row.amount,
        ),
        row.record_time,
    )


async def _move_positions(conn: AsyncConnection, record: TransferRecord) -> None:
    """Upsert each changed position, in participant order (one executemany)."""
    changes = position_changes(record)
    if changes:
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
    )

"""Wallet moves in the gateway's database. Each call is one short transaction.

A move is stored before identity is asked to begin it, so a crash at any point leaves a row the
reconciler finds; ``begun`` records that identity froze the wallet, after which the move is
driven to COMPLETED and never given up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import RowMapping, Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_gateway.tables import wallet_moves


class MoveState(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class MoveRecord:
    wallet_move_id: str
    participant_id: str
    """The participant that asked for the wallet: the move's new host."""
    idempotency_key: str
    request_hash: str
    citizen: str
    """``citizens/{citizen}``."""
    state: MoveState
    begun: bool = False
    from_participant_id: str = ""
    from_account: str = ""
    to_account: str = ""
    amount_satang: int | None = None
    ledger_transfer_id: str = ""
    failure_reason: str = ""
    failure_message: str = ""
    trace_id: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def identity_move_name(self) -> str:
        """The move as identity names it: the gateway's id is identity's too."""
        return f"{self.citizen}/walletMoves/{self.wallet_move_id}"


def _record(row: RowMapping) -> MoveRecord:
    values = dict(row)
    values["state"] = MoveState(values["state"])
    return MoveRecord(**values)


def _by_id(wallet_move_id: str) -> Select[Any]:
    return select(wallet_moves).where(wallet_moves.c.wallet_move_id == wallet_move_id)


class MoveStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, wallet_move_id: str) -> MoveRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_by_id(wallet_move_id))).mappings().first()
        return _record(row) if row else None

    async def find_by_key(self, participant_id: str, idempotency_key: str) -> MoveRecord | None:
        async with self._engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(wallet_moves).where(
                            wallet_moves.c.participant_id == participant_id,
                            wallet_moves.c.idempotency_key == idempotency_key,
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _record(row) if row else None

    async def insert(self, record: MoveRecord) -> MoveRecord:
        """Store a new move; if a racing request stored one under the same key first, return
        that one, so a key always names exactly one move."""
        values = {
            k: v
            for k, v in dataclasses.asdict(record).items()
            if k not in ("create_time", "update_time")
        }
        async with self._engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        insert(wallet_moves)
                        .values(values)
                        .on_conflict_do_nothing(constraint="wallet_moves_idempotency_key")
                        .returning(*wallet_moves.c)
                    )
                )
                .mappings()
                .first()
            )
        if row is not None:
            return _record(row)
        found = await self.find_by_key(record.participant_id, record.idempotency_key)
        assert found is not None  # the key's row exists: the racing request's
        return found

    async def update(self, record: MoveRecord, **changes: Any) -> MoveRecord:
        """Apply ``changes`` to a PENDING move; a move in a final state is returned unchanged."""
        async with self._engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        wallet_moves.update()
                        .where(
                            wallet_moves.c.wallet_move_id == record.wallet_move_id,
                            wallet_moves.c.state == MoveState.PENDING.value,
                        )
                        .values(**changes, update_time=func.now())
                        .returning(*wallet_moves.c)
                    )
                )
                .mappings()
                .first()
            ) or (await conn.execute(_by_id(record.wallet_move_id))).mappings().first()
        assert row is not None  # moves are never deleted
        return _record(row)

    async def discard(self, record: MoveRecord) -> None:
        """Forget a move identity refused to begin (nothing else knows it)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                wallet_moves.delete().where(
                    wallet_moves.c.wallet_move_id == record.wallet_move_id,
                    wallet_moves.c.state == MoveState.PENDING.value,
                    wallet_moves.c.begun.is_(False),
                )
            )

    async def touch(self, wallet_move_id: str) -> None:
        """Mark a pending move as just tried, so others are tried before it again."""
        async with self._engine.begin() as conn:
            await conn.execute(
                wallet_moves.update()
                .where(
                    wallet_moves.c.wallet_move_id == wallet_move_id,
                    wallet_moves.c.state == MoveState.PENDING.value,
                )
                .values(update_time=func.now())
            )

    async def stale_pending(self, older_than: timedelta, limit: int = 100) -> list[MoveRecord]:
        async with self._engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(wallet_moves)
                        .where(
                            wallet_moves.c.state == MoveState.PENDING.value,
                            wallet_moves.c.update_time < func.now() - older_than,
                        )
                        .order_by(wallet_moves.c.update_time)
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [_record(row) for row in rows]

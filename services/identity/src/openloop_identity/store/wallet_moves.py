"""Wallet moves and the citizen rows they freeze and hand over.

Writes take the caller's connection: beginning a move verifies the citizen's assertion, spends
its token, records the move and freezes the wallet in one transaction
(:mod:`openloop_identity.wallet_moves`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from openloop_identity import errors
from openloop_identity.domain.model import NewWalletMove, WalletMove, WalletMoveState
from openloop_identity.tables import citizens, wallet_moves


def _move(row: Row[Any]) -> WalletMove:
    return WalletMove(
        citizen_id=row.citizen_id,
        wallet_move_id=row.wallet_move_id,
        from_participant_id=row.from_participant_id,
        to_participant_id=row.to_participant_id,
        from_generation=row.from_generation,
        state=WalletMoveState(row.state),
        create_time=row.create_time,
        complete_time=row.complete_time,
    )


async def lock_citizen(conn: AsyncConnection, citizen_id: str) -> Any:
    """The citizen's row (wallet fields and token), locked until the transaction ends;
    NOT_FOUND if there is none."""
    row = (
        await conn.execute(
            select(
                citizens.c.citizen_id,
                citizens.c.citizen_token,
                citizens.c.hosting_participant_id,
                citizens.c.wallet_generation,
                citizens.c.wallet_move_id,
                citizens.c.erase_time,
            )
            .where(citizens.c.citizen_id == citizen_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise errors.citizen_not_found(citizen_id)
    return row


async def find(
    conn: AsyncConnection, citizen_id: str, wallet_move_id: str, *, lock: bool = False
) -> tuple[WalletMove, str] | None:
    """The move and the digest of the assertion that began it, or None."""
    query = select(wallet_moves).where(
        wallet_moves.c.citizen_id == citizen_id,
        wallet_moves.c.wallet_move_id == wallet_move_id,
    )
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else (_move(row), row.assertion_digest)


async def begin(
    conn: AsyncConnection, new: NewWalletMove, *, from_participant_id: str, from_generation: int
) -> WalletMove:
    """Record the move and freeze the wallet (the citizen's row must be locked)."""
    row = (
        await conn.execute(
            wallet_moves.insert()
            .values(
                citizen_id=new.citizen_id,
                wallet_move_id=new.wallet_move_id,
                from_participant_id=from_participant_id,
                to_participant_id=new.to_participant_id,
                from_generation=from_generation,
                assertion_digest=new.assertion_digest,
                state=WalletMoveState.IN_PROGRESS.value,
            )
            .returning(*wallet_moves.c)
        )
    ).one()
    await conn.execute(
        citizens.update()
        .where(citizens.c.citizen_id == new.citizen_id)
        .values(wallet_move_id=new.wallet_move_id)
    )
    return _move(row)


async def complete(conn: AsyncConnection, move: WalletMove) -> WalletMove:
    """Hand the wallet to the move's new participant and mark the move COMPLETED (the move's
    row must be locked and IN_PROGRESS)."""
    await conn.execute(
        citizens.update()
        .where(
            citizens.c.citizen_id == move.citizen_id,
            citizens.c.wallet_move_id == move.wallet_move_id,
        )
        .values(
            hosting_participant_id=move.to_participant_id,
            wallet_generation=move.from_generation + 1,
            wallet_move_id=None,
        )
    )
    row = (
        await conn.execute(
            wallet_moves.update()
            .where(
                wallet_moves.c.citizen_id == move.citizen_id,
                wallet_moves.c.wallet_move_id == move.wallet_move_id,
            )
            .values(state=WalletMoveState.COMPLETED.value, complete_time=func.now())
            .returning(*wallet_moves.c)
        )
    ).one()
    return _move(row)

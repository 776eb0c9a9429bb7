"""The replay guard of identity assertions, in PostgreSQL.

A token's ``jti`` is claimed inside the transaction that uses the token: if the enrolment
commits, the token is spent; if it fails, the claim rolls back with it and the client can
retry. The primary key (issuer, jti) decides between concurrent uses of one token across
replicas. Spent tokens are forgotten once they could no longer verify anyway, by a
background loop (:func:`prune_forever`), so a payment's path does one INSERT and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity.tables import assertion_replays

_log = logging.getLogger(__name__)

PRUNE_BATCH = 10_000
"""Expired claims deleted per statement: short transactions, whatever the backlog."""


_CLAIM = (
    insert(assertion_replays)
    .values(
        issuer=bindparam("issuer"),
        jti=bindparam("jti"),
        expires_at=bindparam("expires_at"),
        binding=bindparam("binding"),
    )
    .on_conflict_do_nothing()
    .returning(assertion_replays.c.jti)
)
"""Built once: every payment runs it, and SQLAlchemy finds its compiled form by a key it
already holds."""
_BINDING = select(assertion_replays.c.binding).where(
    assertion_replays.c.issuer == bindparam("issuer"),
    assertion_replays.c.jti == bindparam("jti"),
)


class PostgresReplayGuard:
    """:class:`openloop_identity.assertions.ReplayGuard` on one transaction's connection.

    With a ``binding`` (the caller's name for its request), a token already spent under the
    same binding is claimed again: the request is being retried, not replayed. A claim
    racing another under the same binding waits for it (the primary key) and then sees its
    binding, so concurrent copies of one request all pass and nothing else does."""

    def __init__(self, conn: AsyncConnection, binding: str = "") -> None:
        self._conn = conn
        self._binding = binding

    async def claim(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        key = {"issuer": issuer, "jti": jti}
        inserted = await self._conn.execute(
            _CLAIM, {**key, "expires_at": expires_at, "binding": self._binding}
        )
        if inserted.first() is not None:
            return True
        if not self._binding:
            return False
        return await self._conn.scalar(_BINDING, key) == self._binding


async def prune(engine: AsyncEngine, now: datetime) -> int:
    """Forget spent tokens that expired before ``now``; returns how many. Replicas may run it
    side by side (SKIP LOCKED)."""
    total = 0
    while True:
        expired = (
            select(assertion_replays.c.issuer, assertion_replays.c.jti)
            .where(assertion_replays.c.expires_at < now)
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
            .subquery()
        )
        async with engine.begin() as conn:
            result = await conn.execute(
                delete(assertion_replays).where(
                    assertion_replays.c.issuer == expired.c.issuer,
                    assertion_replays.c.jti == expired.c.jti,
                )
            )
        total += result.rowcount
        if result.rowcount < PRUNE_BATCH:
            return total


async def prune_forever(engine: AsyncEngine, interval_seconds: float) -> None:
    """Prune every ``interval_seconds`` for the life of the service."""
    while True:
        try:
            await prune(engine, datetime.now(UTC))
        except Exception:  # a database blip must not end the loop
            _log.exception("pruning spent identity assertions failed; retrying later")
        await asyncio.sleep(interval_seconds)

"""The replay guard of identity assertions, in PostgreSQL.

A token's ``jti`` is claimed inside the transaction that uses the token: if the enrolment
commits, the token is spent; if it fails, the claim rolls back with it and the client can
retry. The primary key (issuer, jti) decides between concurrent uses of one token across
replicas. Spent tokens are forgotten once they could no longer verify anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openloop_identity.tables import assertion_replays

PRUNE_BATCH = 100
"""Expired claims deleted per new claim: cleanup keeps pace with use, a little at a time."""


class PostgresReplayGuard:
    """:class:`openloop_identity.assertions.ReplayGuard` on one transaction's connection."""

    def __init__(self, conn: AsyncConnection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    async def claim(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        inserted = await self._conn.execute(
            insert(assertion_replays)
            .values(issuer=issuer, jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing()
            .returning(assertion_replays.c.jti)
        )
        if inserted.first() is None:
            return False
        expired = (
            assertion_replays.select()
            .with_only_columns(assertion_replays.c.issuer, assertion_replays.c.jti)
            .where(assertion_replays.c.expires_at < self._now)
            .limit(PRUNE_BATCH)
            .with_for_update(skip_locked=True)
            .subquery()
        )
        await self._conn.execute(
            delete(assertion_replays).where(
                assertion_replays.c.issuer == expired.c.issuer,
                assertion_replays.c.jti == expired.c.jti,
            )
        )
        return True

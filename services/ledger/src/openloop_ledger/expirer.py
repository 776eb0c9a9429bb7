"""Voids pending transfers whose timeout has passed, so reserved money comes back on its own.

Every replica may run it: the expiry of a pending transfer is a transfer with a
fixed id (``@expiry:{pending id}``), so two replicas expiring the same transfer
record it once. Expiries go through the batcher like any request, and therefore
into the journal and the Merkle log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import pg
from openloop_ledger.batcher import Batcher
from openloop_runtime.background import background

_log = logging.getLogger(__name__)

BATCH = 8189


class Expirer:
    def __init__(self, engine: AsyncEngine, batcher: Batcher, *, interval: float) -> None:
        self._engine = engine
        self._batcher = batcher
        self._interval = interval

    async def expire_due(self, now: datetime | None = None) -> int:
        """Expire every pending transfer due at ``now``; returns how many expired."""
        expired = 0
        while True:
            async with pg.connection(self._engine) as conn:
                due = await pg.due_timeouts(conn, now or datetime.now(UTC), BATCH)
            if not due:
                return expired
            count = await self._batcher.expire(due)
            expired += count
            if len(due) < BATCH or count == 0:
                return expired

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Expirer]:
        async with background(self._run(), "ledger-expirer"):
            yield self

    async def _run(self) -> None:
        while True:
            try:
                if expired := await self.expire_due():
                    _log.info("expired %d pending transfers", expired)
            except Exception:
                _log.exception("expiring pending transfers failed; retrying")
            await asyncio.sleep(self._interval)

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
    def __init__(
        self, engine: AsyncEngine, batcher: Batcher, *, interval: float, page: int = BATCH
    ) -> None:
        self._engine = engine
        self._batcher = batcher
        self._interval = interval
        self._page = page

    async def expire_due(self, now: datetime | None = None) -> int:
        """Expire every pending transfer due at ``now``; returns how many expired.

        One pass walks every ``pending_timeouts`` row due at ``now`` once, a page at a time
        in ``(expires_at, transfer_id)`` order, each page after the last key of the one
        before. A row whose transfer cannot be expired (not pending, already resolved:
        only a defect or a hand-made row leaves one, and the verifier reports it) stays in
        the table and is passed over, however many of them there are: the walk never asks
        the table for "the first rows left", which such rows would fill. The pass ends at
        a page shorter than the page size; the key only grows and ``now`` is fixed, so it
        ends. Rows a pass misses (written behind its key while it runs) wait for the next.
        """
        now = now or datetime.now(UTC)
        expired = 0
        after: tuple[datetime, str] | None = None
        while True:
            async with pg.connection(self._engine) as conn:
                due = await pg.due_timeouts(conn, now, self._page, after)
            if due:
                expired += await self._batcher.expire([transfer_id for _, transfer_id in due])
            if len(due) < self._page:
                return expired
            after = due[-1]

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

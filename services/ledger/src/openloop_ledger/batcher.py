"""Gathers concurrent requests into batches, one database transaction each.

Sixty-four clients each sending one transfer cost sixty-four fsyncs when each
request commits alone; gathered, they cost one. While a batch is planned, new
requests queue, and the next batch takes all of them (up to ``max_events``
transfers). A request's answer comes back only after its batch committed.

Two batches are in flight at most: one committing, and the next, which plans on
what the first will leave and inserts its rows meanwhile (see
:mod:`openloop_ledger.writes`), so this process's planning and the database's work
overlap instead of taking turns. A third waits until the first has ended, and so
does a second of fewer than ``pipeline_min_events`` events.

A hot account is no bottleneck here: however many transfers in a batch debit the
funding account, its row is read and written once per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from openloop_ledger.model import TransferSpec
from openloop_ledger.validation import TransferResult
from openloop_ledger.writes import BatchWriter, ExpiryRequest, Outcome, Request, TransferRequest
from openloop_runtime.background import background
from openloop_runtime.errors import DomainError, ErrorReason

_log = logging.getLogger(__name__)

PIPELINE_MIN_EVENTS = 500
"""Queued events worth a batch of their own while another is in flight (the default of
``OPENLOOP_LEDGER_BATCH_PIPELINE_MIN_EVENTS``). A smaller batch is mostly fixed cost (its
round trips and its commit's fsync), better shared with the requests that arrive while
the batch in flight commits: sixty-four clients sending one transfer each never start a
second batch, clients sending thousands do. Measured: with 1, sixty-four single-transfer
clients got half the requests per second."""


@dataclass(slots=True)
class _Queued:
    request: Request
    size: int
    future: asyncio.Future[Outcome]


class Batcher:
    def __init__(
        self,
        writer: BatchWriter,
        *,
        max_events: int,
        pipeline_min_events: int = PIPELINE_MIN_EVENTS,
    ) -> None:
        self._writer = writer
        self._max_events = max_events
        self._pipeline_min_events = pipeline_min_events
        self._queue: deque[_Queued] = deque()
        self._queued_events = 0
        self._wakeup = asyncio.Event()
        self.committed = asyncio.Condition()
        """Notified after each batch that added to the journal (the sealer and feeds wait)."""

    async def create_transfers(self, specs: Sequence[TransferSpec]) -> list[TransferResult]:
        outcome = await self._submit(TransferRequest(specs), len(specs))
        assert isinstance(outcome, list)
        return outcome

    async def expire(self, pending_ids: Sequence[str]) -> int:
        outcome = await self._submit(ExpiryRequest(pending_ids), len(pending_ids))
        assert isinstance(outcome, int)
        return outcome

    async def _submit(self, request: Request, size: int) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(request, max(size, 1), future))
        self._queued_events += max(size, 1)
        self._wakeup.set()
        # A caller that gives up (deadline, cancel) leaves its request in the batch: it is
        # applied or not as a whole, and a retry under the same ids gets EXISTS.
        return await asyncio.shield(future)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Batcher]:
        """Runs the batch loop for the block; on exit, queued requests are still applied."""
        try:
            async with background(self._run(), "ledger-batcher"):
                yield self
        finally:
            while self._queue:
                await self._apply(self._take(), None)

    async def _run(self) -> None:
        in_flight: list[asyncio.Task[None]] = []
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    if in_flight and self._queued_events < self._pipeline_min_events:
                        # Too few to be worth a batch of their own: let more gather.
                        await in_flight.pop(0)
                    planned = asyncio.Event()
                    in_flight.append(asyncio.create_task(self._apply(self._take(), planned)))
                    # The next batch plans on this one's plan, and starts only once the one
                    # before this has ended (committed or failed): two in flight at most.
                    await planned.wait()
                    if len(in_flight) == 2:
                        await in_flight.pop(0)
        finally:
            # Stopping: the batches in flight end as a cancelled one always has (their
            # callers hear UNAVAILABLE, and a retry under the same ids is safe).
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    def _take(self) -> list[_Queued]:
        taken = [self._queue.popleft()]
        events = taken[0].size
        while self._queue and events + self._queue[0].size <= self._max_events:
            queued = self._queue.popleft()
            taken.append(queued)
            events += queued.size
        self._queued_events -= events
        return taken

    async def _apply(self, taken: list[_Queued], planned: asyncio.Event | None) -> None:
        try:
            applied = await self._writer.apply(
                [queued.request for queued in taken], planned=planned
            )
        except BaseException as error:
            # Every waiting caller hears of it, even when the batch itself is being
            # cancelled (shutdown): its request may or may not have committed, and a retry
            # under the same ids is safe either way.
            failure = error if isinstance(error, Exception) else _stopping()
            for queued in taken:
                if not queued.future.done():
                    queued.future.set_exception(failure)
            if failure is not error:
                raise
            return
        for queued, outcome in zip(taken, applied.outcomes, strict=True):
            if not queued.future.done():
                queued.future.set_result(outcome)
        if applied.committed:
            async with self.committed:
                self.committed.notify_all()


def _stopping() -> DomainError:
    return DomainError(
        grpc.StatusCode.UNAVAILABLE,
        ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        "the ledger stopped while applying this request; retry with the same transfer ids",
        {"upstream": "ledger"},
    )

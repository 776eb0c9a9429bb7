"""The batcher's scheduling: which requests share a batch, and how many batches are in flight.

The writer here is a stand-in that holds each batch open until the test lets it commit,
so the order of events is the test's, not the machine's. What a batch does to the books
is tested against PostgreSQL elsewhere (``test_ledger_concurrency.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import grpc

from openloop.ledger.v1 import resources_pb2
from openloop_ledger.batcher import Batcher
from openloop_ledger.model import TransferSpec
from openloop_ledger.writes import Applied, BatchWriter, Request, TransferRequest
from openloop_runtime.errors import DomainError

OK = resources_pb2.CREATE_TRANSFER_RESULT_OK


class _HeldWriter:
    """Plans at once, then commits each batch only when the test says so."""

    def __init__(self, *, committing: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[str]] = []
        self._committing = committing
        """Batches (by number) that commit as soon as they start."""
        self.in_flight = 0
        self.most_in_flight = 0
        self._commit: list[asyncio.Event] = []

    async def apply(
        self, requests: Sequence[Request], *, planned: asyncio.Event | None = None
    ) -> Applied:
        specs = [s for r in requests if isinstance(r, TransferRequest) for s in r.specs]
        self.batches.append([s.id for s in specs])
        commit = asyncio.Event()
        if len(self._commit) in self._committing:
            commit.set()
        self._commit.append(commit)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if planned is not None:
            planned.set()
        try:
            await commit.wait()
        finally:
            self.in_flight -= 1
        return Applied([[OK] * len(r.specs) for r in requests if isinstance(r, TransferRequest)], 0)

    def commit(self, batch: int) -> None:
        self._commit[batch].set()


def _request(*ids: str) -> list[TransferSpec]:
    return [TransferSpec(i, "a", "b", 1, 764, 1, "") for i in ids]


async def _settle() -> None:
    """Let every task that can run, run."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_large_enough_queue_starts_the_next_batch_while_one_commits() -> None:
    writer = _HeldWriter()
    batcher = Batcher(cast("BatchWriter", writer), max_events=2, pipeline_min_events=2)
    async with batcher.running():
        calls = [
            asyncio.create_task(batcher.create_transfers(_request(f"{n}a", f"{n}b")))
            for n in range(3)
        ]
        await _settle()
        # The second batch plans while the first commits; the third waits for the first.
        assert writer.batches == [["0a", "0b"], ["1a", "1b"]]
        writer.commit(0)
        await _settle()
        assert writer.batches[2] == ["2a", "2b"]
        assert calls[0].done()
        assert not calls[1].done()
        writer.commit(1)
        writer.commit(2)
        assert await asyncio.gather(*calls) == [[OK, OK]] * 3
    assert writer.most_in_flight == 2


async def test_a_small_queue_waits_for_the_batch_in_flight_and_joins_the_next() -> None:
    writer = _HeldWriter()
    batcher = Batcher(cast("BatchWriter", writer), max_events=100, pipeline_min_events=3)
    async with batcher.running():
        first = asyncio.create_task(batcher.create_transfers(_request("a")))
        await _settle()
        later = [asyncio.create_task(batcher.create_transfers(_request(i))) for i in ("b", "c")]
        await _settle()
        # Two queued transfers are fewer than three: they wait, and then go together.
        assert writer.batches == [["a"]]
        writer.commit(0)
        await _settle()
        assert writer.batches == [["a"], ["b", "c"]]
        writer.commit(1)
        assert await asyncio.gather(first, *later) == [[OK]] * 3
    assert writer.most_in_flight == 1


async def test_stopping_fails_the_batches_in_flight_and_applies_what_is_queued() -> None:
    """A batch cut off by shutdown may or may not have committed: its callers hear
    UNAVAILABLE and retry under the same ids; requests still queued are applied."""
    writer = _HeldWriter(committing=frozenset({2}))
    batcher = Batcher(cast("BatchWriter", writer), max_events=1, pipeline_min_events=1)
    async with batcher.running():
        calls = [
            asyncio.create_task(batcher.create_transfers(_request(i))) for i in ("a", "b", "c")
        ]
        await _settle()
        assert writer.batches == [["a"], ["b"]]
        # Queued behind the two in flight, "c" is applied after the loop has stopped.
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for cut_off in outcomes[:2]:
        assert isinstance(cut_off, DomainError)
        assert (cut_off.code, cut_off.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "UPSTREAM_UNAVAILABLE",
        )
    assert outcomes[2] == [OK]
    assert writer.in_flight == 0

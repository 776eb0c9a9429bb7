"""WatchJournal: every committed transfer, in commit order, resumable from any position."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from openloop.ledger.v1 import resources_pb2, service_pb2
from services.ledger.tests.ledger_helpers import T, open_account, submit, transfer

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub


async def _read(ledger: Stub, start: int, count: int) -> list[resources_pb2.JournalEntry]:
    entries: list[resources_pb2.JournalEntry] = []
    stream = ledger.WatchJournal(service_pb2.WatchJournalRequest(start_position=start))
    async for response in stream:
        entries += response.entries
        if len(entries) >= count:
            stream.cancel()
            break
    return entries[:count]


async def test_the_journal_streams_from_the_start_without_gaps(ledger: Stub) -> None:
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    moves = [transfer(a, b, n) for n in range(1, 6)]
    assert await submit(ledger, *moves) == [T.CREATE_TRANSFER_RESULT_OK] * 5
    looked = await ledger.LookupTransfers(service_pb2.LookupTransfersRequest(ids=[moves[-1].id]))
    last = looked.transfers[0].position
    entries = await asyncio.wait_for(_read(ledger, 0, last + 1), 10)
    assert [e.position for e in entries] == list(range(last + 1))
    assert [e.transfer.id for e in entries[-5:]] == [m.id for m in moves]
    assert all(e.transfer.position == e.position for e in entries)


async def test_a_follower_resumes_and_receives_new_commits(ledger: Stub) -> None:
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    first = transfer(a, b, 1)
    assert await submit(ledger, first) == [T.CREATE_TRANSFER_RESULT_OK]
    looked = await ledger.LookupTransfers(service_pb2.LookupTransfersRequest(ids=[first.id]))
    resume_at = looked.transfers[0].position + 1
    follower = asyncio.create_task(_read(ledger, resume_at, 2))
    await asyncio.sleep(0.3)
    later = [transfer(a, b, 2), transfer(a, b, 3)]
    for move in later:
        assert await submit(ledger, move) == [T.CREATE_TRANSFER_RESULT_OK]
    entries = await asyncio.wait_for(follower, 10)
    assert [e.transfer.id for e in entries] == [m.id for m in later]
    assert [e.position for e in entries] == [resume_at, resume_at + 1]

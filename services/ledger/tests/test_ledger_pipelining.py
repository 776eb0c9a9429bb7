"""Pipelined batches whose plans stop lining up: a batch planned again under the lock,
and another replica writing while this one plans ahead.

The events are ordered by gates on the writer's own database calls, so each test is
deterministic: it does not depend on the machine's timing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_dev.postgres import wait_for_lock_waiters
from openloop_ledger import pg
from openloop_ledger.model import TransferSpec
from openloop_ledger.writes import BatchWriter, TransferRequest

if TYPE_CHECKING:
    Stub = service_pb2_grpc.LedgerServiceAsyncStub

OK = resources_pb2.CREATE_TRANSFER_RESULT_OK


def _id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(ledger_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(ledger_database)
    yield engine
    await engine.dispose()


async def _open(ledger: Stub, label: str) -> str:
    account_id = _id(label)
    account = resources_pb2.Account(
        id=account_id, ledger=764, code=1, participant="participants/bank-a"
    )
    response = await ledger.CreateAccounts(service_pb2.CreateAccountsRequest(accounts=[account]))
    assert list(response.results) == [resources_pb2.CREATE_ACCOUNT_RESULT_OK]
    return account_id


async def _books(database: AsyncEngine, *ids: str) -> list[tuple[Any, ...]]:
    """Per account: (debits_posted, credits_posted) as stored, then as the journal adds up."""
    async with database.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT a.id, a.debits_posted, a.credits_posted,"
                    " (SELECT coalesce(sum(amount), 0) FROM transfers t"
                    "   WHERE t.debit_account_id = a.id),"
                    " (SELECT coalesce(sum(amount), 0) FROM transfers t"
                    "   WHERE t.credit_account_id = a.id)"
                    " FROM accounts a WHERE a.id = ANY(:ids)"
                ),
                {"ids": list(ids)},
            )
        ).all()
    by_id = {r[0]: tuple(r[1:]) for r in rows}
    return [by_id[i] for i in ids]


async def test_a_stale_younger_plan_never_leaks_into_the_elder_batch_planned_again(
    ledger: Stub, ledger_database: str, database: AsyncEngine, monkeypatch: Any
) -> None:
    """Batch 1 plans ahead; another replica wrote meanwhile, so it is planned again under
    the lock. Batch 2 planned on batch 1's first plan (which never commits). Batch 2's
    plan must not become what batch 1's second attempt reads as committed balances."""
    funding, wallet, shop = [await _open(ledger, n) for n in ("funding", "wallet", "shop")]
    engine = create_async_engine(ledger_database)
    writer, other_replica = BatchWriter(engine), BatchWriter(engine)

    def move(transfer_id: str, debit: str, credit: str, amount: int) -> TransferRequest:
        return TransferRequest([TransferSpec(transfer_id, debit, credit, amount, 764, 1, "")])

    first_id, second_id = _id("first"), _id("second")
    second_in_view = asyncio.Event()
    first_replanning = asyncio.Event()
    second_planned = asyncio.Event()
    first_reads = 0
    real_reads, real_write = pg.transfers_with_resolutions, pg.write_batch

    async def reads(conn: pg.Connection, ids: list[str]) -> Any:
        nonlocal first_reads
        if second_id in ids:
            second_in_view.set()
            await first_replanning.wait()
        elif first_id in ids:
            first_reads += 1
            if first_reads == 2:  # batch 1 planned again, under the lock
                first_replanning.set()
                await second_planned.wait()
        return await real_reads(conn, ids)

    real_lock = pg.lock_journal

    async def write(conn: pg.Connection, transfers: list[Any], start: int, *rest: Any) -> None:
        if transfers[0].spec.id == first_id and first_reads == 1:
            await second_in_view.wait()  # batch 2 is planning... on batch 1's first plan
        await real_write(conn, transfers, start, *rest)

    async def lock(conn: pg.Connection) -> Any:
        if first_reads == 1:  # batch 1's first plan, whether it writes before the lock or not
            await second_in_view.wait()
        return await real_lock(conn)

    try:
        for _ in range(2):  # until the writer plans ahead of the lock
            await writer.apply([move(_id("warm"), funding, shop, 1)])
        # Another replica writes three transfers: batch 1's positions, planned again, start
        # past those batch 2 has inserted at.
        await other_replica.apply([move(_id("other"), funding, shop, 1) for _ in range(3)])
        monkeypatch.setattr(pg, "transfers_with_resolutions", reads)
        monkeypatch.setattr(pg, "write_batch", write)
        monkeypatch.setattr(pg, "lock_journal", lock)
        first_planned = asyncio.Event()
        first = asyncio.create_task(
            writer.apply([move(first_id, funding, wallet, 10)], planned=first_planned)
        )
        await first_planned.wait()
        second = asyncio.create_task(
            writer.apply([move(second_id, wallet, shop, 10)], planned=second_planned)
        )
        assert (await asyncio.wait_for(first, 30)).outcomes == [[OK]]
        assert (await asyncio.wait_for(second, 30)).outcomes == [[OK]]
    finally:
        monkeypatch.undo()
        await engine.dispose()
    stored_and_summed = await _books(database, wallet)
    # (debits_posted, credits_posted) stored == what the journal's transfers add up to
    [(dq, cq, journal_dq, journal_cq)] = stored_and_summed
    assert (dq, cq) == (journal_dq, journal_cq), stored_and_summed


async def test_a_replica_writing_while_two_batches_are_in_flight_never_hangs(
    ledger: Stub, ledger_database: str, database: AsyncEngine, monkeypatch: Any
) -> None:
    """Replica A has two batches in flight, both planned ahead of the lock: the first
    accepted nothing (so inserted nothing) and waits for the journal lock, which replica B
    holds; the second has inserted its row and waits, in Python, for the first to hold the
    lock. B then inserts at the journal's next position, the second batch's: B waits for
    A's second batch, which waits for A's first, which waits for B. PostgreSQL sees no
    cycle (one of the waits is an asyncio.Event), so nothing ever breaks it."""
    funding, shop = [await _open(ledger, n) for n in ("funding", "shop")]
    engine_a, engine_b = create_async_engine(ledger_database), create_async_engine(ledger_database)
    replica_a, replica_b = BatchWriter(engine_a), BatchWriter(engine_b)

    def move(transfer_id: str, debit: str, credit: str, amount: int) -> TransferRequest:
        return TransferRequest([TransferSpec(transfer_id, debit, credit, amount, 764, 1, "")])

    b_id, second_id = _id("b"), _id("second")
    b_holds_lock, second_inserted, release_b = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_write = pg.write_batch

    async def write(conn: pg.Connection, transfers: list[Any], start: int, *rest: Any) -> None:
        if transfers[0].spec.id == b_id:
            b_holds_lock.set()
            await release_b.wait()
        await real_write(conn, transfers, start, *rest)
        if transfers[0].spec.id == second_id:
            second_inserted.set()

    tasks: list[asyncio.Task[Any]] = []
    try:
        for _ in range(2):  # until replica A plans ahead of the lock
            await replica_a.apply([move(_id("warm"), funding, shop, 1)])
        monkeypatch.setattr(pg, "write_batch", write)
        tasks.append(asyncio.create_task(replica_b.apply([move(b_id, funding, shop, 1)])))
        await b_holds_lock.wait()
        first_planned = asyncio.Event()
        # An account that does not exist: the first batch accepts nothing (every event
        # refused, or every one a retry answered EXISTS), and waits for the lock.
        tasks.append(
            asyncio.create_task(
                replica_a.apply(
                    [move(_id("refused"), _id("nobody"), shop, 5)], planned=first_planned
                )
            )
        )
        await first_planned.wait()
        second_planned = asyncio.Event()
        tasks.append(
            asyncio.create_task(
                replica_a.apply([move(second_id, funding, shop, 1)], planned=second_planned)
            )
        )
        await second_planned.wait()
        # B goes on once the second batch has inserted its row (as it does at once, unless
        # it waits for the first batch to hold the lock before it writes anything).
        await asyncio.wait([asyncio.create_task(second_inserted.wait())], timeout=1.0)
        release_b.set()
        _, pending = await asyncio.wait(tasks, timeout=10)
        if pending:
            async with database.connect() as conn:
                sessions = (
                    await conn.execute(
                        text(
                            "SELECT state, wait_event_type, wait_event, left(query, 60)"
                            " FROM pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid() AND state <> 'idle' ORDER BY query"
                        )
                    )
                ).all()
            raise AssertionError(f"{len(pending)} batches still waiting after 10 s: {sessions}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        monkeypatch.undo()
        await engine_a.dispose()
        await engine_b.dispose()


async def test_another_replica_writing_meets_a_plan_made_ahead_without_a_deadlock(
    ledger: Stub, ledger_database: str, monkeypatch: Any, caplog: Any
) -> None:
    """Replica A plans ahead and inserts its row at the journal's next position, then waits
    for the journal lock, which replica B holds; B inserts at that same position. B waits
    for A's row, A for B's lock: PostgreSQL breaks the cycle only after deadlock_timeout
    (1 s), with B holding the one lock every batch of every replica needs meanwhile. So no
    batch writes a row before it holds the lock."""
    caplog.set_level(logging.INFO, logger="openloop_ledger.writes")
    funding, shop = [await _open(ledger, n) for n in ("funding", "shop")]
    engine_a, engine_b = create_async_engine(ledger_database), create_async_engine(ledger_database)
    replica_a, replica_b = BatchWriter(engine_a), BatchWriter(engine_b)

    def move(transfer_id: str) -> TransferRequest:
        return TransferRequest([TransferSpec(transfer_id, funding, shop, 1, 764, 1, "")])

    a_id, b_id = _id("a"), _id("b")
    b_holds_lock, release_b = asyncio.Event(), asyncio.Event()
    real_write = pg.write_batch

    async def write(conn: pg.Connection, transfers: list[Any], start: int, *rest: Any) -> None:
        if transfers[0].spec.id == b_id:
            b_holds_lock.set()
            await release_b.wait()
        await real_write(conn, transfers, start, *rest)

    try:
        for _ in range(2):  # until replica A plans ahead of the lock
            await replica_a.apply([move(_id("warm"))])
        monkeypatch.setattr(pg, "write_batch", write)
        b = asyncio.create_task(replica_b.apply([move(b_id)]))
        await b_holds_lock.wait()
        caplog.clear()
        started = time.monotonic()
        a = asyncio.create_task(replica_a.apply([move(a_id)]))
        # B goes on once A waits for the journal lock (having inserted its row first).
        await wait_for_lock_waiters(ledger_database, 1)
        release_b.set()
        results = await asyncio.wait_for(asyncio.gather(a, b), 30)
        elapsed = time.monotonic() - started
    finally:
        monkeypatch.undo()
        await engine_a.dispose()
        await engine_b.dispose()
    assert [r.outcomes for r in results] == [[[OK]], [[OK]]]
    deadlocks = [r.message for r in caplog.records if "deadlock" in r.message]
    assert not deadlocks, (round(elapsed, 2), deadlocks)
    assert elapsed < 0.9, round(elapsed, 2)

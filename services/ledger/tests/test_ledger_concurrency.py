"""Concurrent requests against one ledger: no overdraft, no double posting, no deadlock."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_dev.postgres import wait_for_lock_waiters
from openloop_ledger import pg
from openloop_ledger.batcher import PIPELINE_MIN_EVENTS
from openloop_ledger.model import TransferSpec
from openloop_ledger.writes import BatchWriter, TransferRequest

if TYPE_CHECKING:
    Stub = service_pb2_grpc.LedgerServiceAsyncStub

T = resources_pb2.CreateTransferResult
WALLET = resources_pb2.AccountFlags(debits_must_not_exceed_credits=True)


def _id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(
    scope="module",
    params=[PIPELINE_MIN_EVENTS, 1],
    ids=["batches-pipelined-from-500-events", "every-batch-pipelined"],
)
def ledger_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Every test here runs twice: as deployed, and with each batch planned while the one
    before it commits, however small (the path the bench's large batches take)."""
    return {"batch_pipeline_min_events": request.param}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(ledger_database: str) -> AsyncIterator[AsyncEngine]:
    """A connection pool of our own, to hold rows and locks the way a racing request would."""
    engine = create_async_engine(ledger_database)
    yield engine
    await engine.dispose()


async def _open(ledger: Stub, label: str, flags: resources_pb2.AccountFlags | None = None) -> str:
    account_id = _id(label)
    account = resources_pb2.Account(
        id=account_id, ledger=764, code=1, flags=flags, participant="participants/bank-a"
    )
    response = await ledger.CreateAccounts(service_pb2.CreateAccountsRequest(accounts=[account]))
    assert list(response.results) == [resources_pb2.CREATE_ACCOUNT_RESULT_OK]
    return account_id


def _transfer(
    debit: str, credit: str, amount: int, transfer_id: str | None = None
) -> resources_pb2.Transfer:
    return resources_pb2.Transfer(
        id=transfer_id or _id("t"),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        ledger=764,
        code=1,
    )


async def _submit(ledger: Stub, *transfers: resources_pb2.Transfer) -> list[int]:
    response = await ledger.CreateTransfers(service_pb2.CreateTransfersRequest(transfers=transfers))
    return list(response.results)


async def _totals(ledger: Stub, *ids: str) -> list[tuple[int, int]]:
    response = await ledger.LookupAccounts(service_pb2.LookupAccountsRequest(ids=ids))
    by_id = {a.id: (a.debits_posted, a.credits_posted) for a in response.accounts}
    return [by_id[i] for i in ids]


async def test_a_wallet_is_never_overdrawn_by_concurrent_payments(ledger: Stub) -> None:
    bank, shop = await _open(ledger, "bank"), await _open(ledger, "shop")
    wallet = await _open(ledger, "wallet", WALLET)
    assert await _submit(ledger, _transfer(bank, wallet, 1_000_000)) == [
        T.CREATE_TRANSFER_RESULT_OK
    ]

    rng = random.Random(7)
    amounts = [rng.randint(10_000, 60_000) for _ in range(50)]
    assert sum(amounts) > 1_000_000
    payments = [_transfer(wallet, shop, amount) for amount in amounts]
    outcomes = await asyncio.gather(*(_submit(ledger, p) for p in payments))

    accepted = [
        p.amount
        for p, [r] in zip(payments, outcomes, strict=True)
        if r == T.CREATE_TRANSFER_RESULT_OK
    ]
    refused = [
        (p.amount, r)
        for p, [r] in zip(payments, outcomes, strict=True)
        if r != T.CREATE_TRANSFER_RESULT_OK
    ]
    assert refused, "the payments add up to more than the balance; some must be refused"
    assert {r for _, r in refused} == {T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS}
    [(debits, credits)] = await _totals(ledger, wallet)
    assert credits == 1_000_000
    assert debits == sum(accepted)
    balance = credits - debits
    assert balance >= 0
    # The balance only fell, so each refused payment exceeded even what is left now.
    assert all(amount > balance for amount, _ in refused), "a payment that fitted was refused"
    assert await _totals(ledger, shop) == [(0, sum(accepted))]


async def test_batches_locking_the_same_accounts_in_any_order_never_deadlock(ledger: Stub) -> None:
    accounts = [await _open(ledger, f"acct{i}") for i in range(5)]
    rng = random.Random(11)
    batches = []
    for _ in range(40):
        batch = []
        for _ in range(rng.randint(1, 6)):
            debit, credit = rng.sample(accounts, 2)
            batch.append(_transfer(debit, credit, rng.randint(1, 100)))
        batches.append(batch)

    outcomes = await asyncio.gather(*(_submit(ledger, *batch) for batch in batches))

    for batch, results in zip(batches, outcomes, strict=True):
        assert results == [T.CREATE_TRANSFER_RESULT_OK] * len(batch)
    expected = {a: [0, 0] for a in accounts}
    for batch in batches:
        for t in batch:
            expected[t.debit_account_id][0] += t.amount
            expected[t.credit_account_id][1] += t.amount
    assert await _totals(ledger, *accounts) == [tuple(expected[a]) for a in accounts]


async def test_concurrent_duplicates_of_one_transfer_apply_once(ledger: Stub) -> None:
    bank, wallet = await _open(ledger, "bank"), await _open(ledger, "wallet")
    transfer = _transfer(bank, wallet, 12_345)
    outcomes = await asyncio.gather(*(_submit(ledger, transfer) for _ in range(20)))
    assert (
        sorted(r for [r] in outcomes)
        == [T.CREATE_TRANSFER_RESULT_OK] + [T.CREATE_TRANSFER_RESULT_EXISTS] * 19
    )
    assert await _totals(ledger, bank, wallet) == [(12_345, 0), (0, 12_345)]


async def test_one_id_raced_over_unrelated_accounts_is_applied_once(ledger: Stub) -> None:
    transfer_id = _id("raced")
    pairs = [(await _open(ledger, "from"), await _open(ledger, "to")) for _ in range(10)]
    outcomes = await asyncio.gather(
        *(_submit(ledger, _transfer(debit, credit, 5, transfer_id)) for debit, credit in pairs)
    )
    results = [r for [r] in outcomes]
    assert results.count(T.CREATE_TRANSFER_RESULT_OK) == 1
    assert results.count(T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID) == 9
    winner = pairs[results.index(T.CREATE_TRANSFER_RESULT_OK)]
    for pair in pairs:
        moved = 5 if pair == winner else 0
        assert await _totals(ledger, *pair) == [(moved, 0), (0, moved)]


async def _race_against_uncommitted_transfer(
    ledger: Stub, database: AsyncEngine, *, commit: bool
) -> tuple[list[int], list[tuple[int, int]]]:
    """Submit a batch while another transaction holds one of its ids, uncommitted."""
    other_debit, other_credit = await _open(ledger, "od"), await _open(ledger, "oc")
    debit, credit = await _open(ledger, "d"), await _open(ledger, "c")
    raced, free = _id("raced"), _id("free")
    async with database.connect() as holder:
        transaction = await holder.begin()
        # What another replica's batch does: take a journal position, insert under it.
        await holder.execute(
            text(
                "WITH reserved AS (UPDATE journal SET size = size + 1 RETURNING size - 1 AS size)"
                " INSERT INTO transfers (id, position, debit_account_id, credit_account_id,"
                " amount, ledger, code, user_data, create_time)"
                " SELECT :id, size, :d, :c, 9, 764, 1, '', now() FROM reserved"
            ),
            {"id": raced, "d": other_debit, "c": other_credit},
        )
        pending = asyncio.create_task(
            _submit(ledger, _transfer(debit, credit, 5, free), _transfer(debit, credit, 7, raced))
        )
        await wait_for_lock_waiters(database.url.render_as_string(hide_password=False))
        await (transaction.commit() if commit else transaction.rollback())
    results = await pending
    return results, await _totals(ledger, debit, credit)


async def test_losing_a_race_for_an_id_reports_the_winner_and_keeps_the_rest(
    ledger: Stub, database: AsyncEngine
) -> None:
    results, totals = await _race_against_uncommitted_transfer(ledger, database, commit=True)
    assert results == [
        T.CREATE_TRANSFER_RESULT_OK,
        T.CREATE_TRANSFER_RESULT_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
    ]
    assert totals == [(5, 0), (0, 5)]


async def test_a_racing_transaction_that_rolls_back_leaves_the_id_free(
    ledger: Stub, database: AsyncEngine
) -> None:
    results, totals = await _race_against_uncommitted_transfer(ledger, database, commit=False)
    assert results == [T.CREATE_TRANSFER_RESULT_OK, T.CREATE_TRANSFER_RESULT_OK]
    assert totals == [(12, 0), (0, 12)]


async def test_concurrent_creation_of_one_account_creates_it_once(ledger: Stub) -> None:
    account = resources_pb2.Account(
        id=_id("acct"), ledger=764, code=1, participant="participants/bank-a"
    )
    request = service_pb2.CreateAccountsRequest(accounts=[account])
    outcomes = await asyncio.gather(*(ledger.CreateAccounts(request) for _ in range(20)))
    results = sorted(r for o in outcomes for r in o.results)
    assert (
        results
        == [resources_pb2.CREATE_ACCOUNT_RESULT_OK]
        + [resources_pb2.CREATE_ACCOUNT_RESULT_EXISTS] * 19
    )


async def test_two_replicas_never_act_on_stale_balances(ledger: Stub, ledger_database: str) -> None:
    """Each replica caches the balances it wrote; a write by the other must invalidate them."""
    funding, wallet, shop = (
        await _open(ledger, "funding"),
        await _open(ledger, "wallet", flags=WALLET),
        await _open(ledger, "shop"),
    )
    engine = create_async_engine(ledger_database)
    replicas = [BatchWriter(engine), BatchWriter(engine)]

    def spend(amount: int, label: str) -> TransferRequest:
        return TransferRequest(
            [TransferSpec(_id(label), wallet, shop, amount, 764, 1, "")],
        )

    try:
        fund = TransferRequest([TransferSpec(_id("fund"), funding, wallet, 100, 764, 1, "")])
        assert (await replicas[0].apply([fund])).outcomes == [[T.CREATE_TRANSFER_RESULT_OK]]
        # Replica 1 spends everything; replica 0 last saw 100 in the wallet.
        assert (await replicas[1].apply([spend(100, "a")])).outcomes == [
            [T.CREATE_TRANSFER_RESULT_OK]
        ]
        assert (await replicas[0].apply([spend(100, "b")])).outcomes == [
            [T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS]
        ]
        assert (await replicas[1].apply([spend(1, "c")])).outcomes == [
            [T.CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS]
        ]
    finally:
        await engine.dispose()
    assert await _totals(ledger, wallet) == [(100, 100)]


async def _sessions_idle_in_transaction(database: AsyncEngine, count: int) -> None:
    """Return once ``count`` sessions of the database wait between statements in a
    transaction (a batch that has written and waits its turn for the journal lock)."""
    for _ in range(500):
        async with database.connect() as conn:
            idle = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state = 'idle in transaction'"
                    )
                )
            ).scalar_one()
        if idle >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{idle} of {count} sessions were idle in a transaction")


async def test_a_batch_planned_on_one_that_fails_is_planned_again(
    ledger: Stub, ledger_database: str, database: AsyncEngine
) -> None:
    """A batch plans on the one before it while that one commits. When that one fails
    instead, the plan rests on balances that never were: the journal under the lock shows
    it, and the batch is planned again from what is committed."""
    funding, shop = await _open(ledger, "funding"), await _open(ledger, "shop")
    wallet = await _open(ledger, "wallet", flags=WALLET)
    engine = create_async_engine(ledger_database)
    writer = BatchWriter(engine)

    def move(debit: str, credit: str, amount: int) -> TransferRequest:
        return TransferRequest([TransferSpec(_id("t"), debit, credit, amount, 764, 1, "")])

    try:
        # The writer's last batch found the journal as the one before left it: the next
        # plans on what it remembers, ahead of the lock.
        for amount in (60, 40):
            assert (await writer.apply([move(funding, wallet, amount)])).outcomes == [
                [T.CREATE_TRANSFER_RESULT_OK]
            ]
        async with database.connect() as holder:
            # The first batch waits here for the journal lock.
            transaction = await holder.begin()
            await holder.execute(text("SELECT 1 FROM journal WHERE id = 1 FOR UPDATE"))
            first_planned = asyncio.Event()
            first = asyncio.create_task(
                writer.apply([move(wallet, shop, 100)], planned=first_planned)
            )
            await first_planned.wait()
            await wait_for_lock_waiters(ledger_database, 1)
            first_pid = (
                await holder.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
            # Planned on the first batch's spending, 60 more would exceed the wallet.
            second = asyncio.create_task(writer.apply([move(wallet, shop, 60)]))
            # It has planned, and waits for the first to hold the journal lock.
            await _sessions_idle_in_transaction(database, 2)
            await holder.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
            await transaction.rollback()
        with pytest.raises(ConnectionError):
            await first
        assert (await second).outcomes == [[T.CREATE_TRANSFER_RESULT_OK]]
    finally:
        await engine.dispose()
    assert await _totals(ledger, wallet, shop) == [(60, 100), (0, 60)]


async def test_batches_take_the_journal_lock_in_the_order_they_planned(
    ledger: Stub,
    ledger_database: str,
    database: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second batch plans on the first; if it took the lock before the first held it,
    it would find the journal short of the first batch and plan again. It waits for the
    first to hold the lock (writing nothing meanwhile), so both commit on their first plan,
    in plan order."""
    caplog.set_level(logging.INFO, logger="openloop_ledger.writes")
    funding, shop = await _open(ledger, "funding"), await _open(ledger, "shop")
    engine = create_async_engine(ledger_database)
    writer = BatchWriter(engine)
    first_id = _id("first")
    second_planned = asyncio.Event()
    real_lock = pg.lock_journal

    async def lock(conn: pg.Connection) -> tuple[int, int, datetime | None]:
        if not second_planned.is_set():  # the first batch is slow to ask for the lock
            await second_planned.wait()
            await asyncio.sleep(0.05)
        return await real_lock(conn)

    def move(transfer_id: str) -> TransferRequest:
        return TransferRequest([TransferSpec(transfer_id, funding, shop, 1, 764, 1, "")])

    try:
        for _ in range(2):  # until the writer plans ahead of the lock
            assert (await writer.apply([move(_id("warm"))])).outcomes == [
                [T.CREATE_TRANSFER_RESULT_OK]
            ]
        monkeypatch.setattr(pg, "lock_journal", lock)
        first_planned = asyncio.Event()
        first = asyncio.create_task(writer.apply([move(first_id)], planned=first_planned))
        await first_planned.wait()
        second_id = _id("second")
        second = asyncio.create_task(writer.apply([move(second_id)], planned=second_planned))
        assert (await first).outcomes == [[T.CREATE_TRANSFER_RESULT_OK]]
        assert (await second).outcomes == [[T.CREATE_TRANSFER_RESULT_OK]]
        assert [r.message for r in caplog.records if r.name == "openloop_ledger.writes"] == []
        async with database.connect() as conn:
            positions = (
                await conn.execute(
                    text("SELECT id FROM transfers WHERE id IN (:a, :b) ORDER BY position"),
                    {"a": first_id, "b": second_id},
                )
            ).scalars()
            assert list(positions) == [first_id, second_id]
    finally:
        monkeypatch.undo()
        await engine.dispose()


async def test_a_writer_that_meets_another_plans_under_the_lock_until_alone_again(
    ledger: Stub, ledger_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two replicas taking turns: a plan made ahead of the lock would be thrown away every
    time. After the first, each replica plans under the lock while the other writes, and
    plans ahead again once it finds the journal as it left it."""
    caplog.set_level(logging.INFO, logger="openloop_ledger.writes")
    funding, shop = await _open(ledger, "funding"), await _open(ledger, "shop")
    engine = create_async_engine(ledger_database)
    replicas = [BatchWriter(engine), BatchWriter(engine)]

    async def pay(replica: int) -> None:
        request = TransferRequest([TransferSpec(_id("t"), funding, shop, 1, 764, 1, "")])
        assert (await replicas[replica].apply([request])).outcomes == [
            [T.CREATE_TRANSFER_RESULT_OK]
        ]

    def replans() -> int:
        """Plans thrown away: found stale under the lock, or refused by a row (the other
        writer's, at a position this one planned to use)."""
        return sum(r.name == "openloop_ledger.writes" for r in caplog.records)

    try:
        for replica in (0, 0, 1):
            await pay(replica)
        assert replans() == 0
        for replica in (0, 1, 0, 1, 0):
            await pay(replica)
        assert replans() == 1, "only the first plan ahead should have met the other writer"
        # Alone again: one batch finds the journal as it left it, and the next plans ahead.
        for _ in range(3):
            await pay(0)
        assert replans() == 1
    finally:
        await engine.dispose()
    assert await _totals(ledger, shop) == [(0, 11)]

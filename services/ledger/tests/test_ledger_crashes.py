"""Crashes under load: the ledger's process is killed, or PostgreSQL stops as a power cut
would, while clients keep paying and retry every request that got no answer, under the
same transfer ids.

Afterwards exactly the transfers whose final answer was OK or EXISTS are recorded, once
each; every balance is what those answers add up to; journal positions have no gap; no
wallet was overdrawn; and, once the restarted sealer has caught up, the offline verifier
passes the whole database.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import asyncpg
import grpc
import pytest

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_dev.postgres import EmbeddedPostgres
from openloop_ledger.app import MIGRATIONS_DIR
from openloop_runtime import migrations
from services.ledger.tests.ledger_helpers import (
    WALLET,
    assert_log_verifies,
    checkpoint_covering,
    transfer,
)
from services.ledger.tests.ledger_process import LedgerProcess

if TYPE_CHECKING:
    Stub = service_pb2_grpc.LedgerServiceAsyncStub

T = resources_pb2.CreateTransferResult
APPLIED = {T.CREATE_TRANSFER_RESULT_OK, T.CREATE_TRANSFER_RESULT_EXISTS}
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
CLIENTS = 6
REQUESTS_PER_CLIENT = 40
TRANSFERS_PER_REQUEST = 25
WALLETS = 12
SHOPS = 4
FUNDING = 300_000
"""Satang each wallet starts with: the first two in five or so of the 6,000 payments (1-3,000
satang each) find money left, and the ledger must refuse the rest as overdrafts whatever
crashed before."""
GHOST_STANDBY = "openloop_test_no_such_standby"
"""A synchronous standby that never connects: commits wait for it once they are on disk."""


CRASH_SETTINGS = {
    "OPENLOOP_LEDGER_CHECKPOINT_INTERVAL_SECONDS": "0.1",
    # Every batch planned while the one before it commits, however small: a crash then
    # finds a batch committing and the next one written on its plan.
    "OPENLOOP_LEDGER_BATCH_PIPELINE_MIN_EVENTS": "1",
}


@dataclass
class Load:
    """What the clients sent and the final answer each transfer got."""

    answers: dict[str, T.ValueType] = field(default_factory=dict)
    amounts: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    retried_requests: int = 0
    acknowledged_requests: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def exists(self) -> int:
        """Transfers answered EXISTS: sent again after an attempt that committed unanswered."""
        return sum(result == T.CREATE_TRANSFER_RESULT_EXISTS for result in self.answers.values())


@contextlib.asynccontextmanager
async def _stub(target: str) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(target) as channel:
        yield cast("Stub", service_pb2_grpc.LedgerServiceStub(channel))


async def _create_transfers(
    stub: Stub, request: service_pb2.CreateTransfersRequest, load: Load
) -> list[T.ValueType]:
    """The request's results, sending it again (same ids) until one attempt is answered."""
    retried = False
    for _ in range(600):
        try:
            reply = await stub.CreateTransfers(request, timeout=5, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            retried = True
            await asyncio.sleep(0.05)
            continue
        load.retried_requests += retried
        load.acknowledged_requests += 1
        load.progress.set()
        return list(reply.results)
    raise AssertionError("a request went unanswered for 30 s of retries")


async def _open_accounts(stub: Stub, run: str) -> tuple[str, list[str], list[str]]:
    funding = f"{run}-funding"
    wallets = [f"{run}-wallet-{n}" for n in range(WALLETS)]
    shops = [f"{run}-shop-{n}" for n in range(SHOPS)]

    def account(
        account_id: str, flags: resources_pb2.AccountFlags | None = None
    ) -> resources_pb2.Account:
        return resources_pb2.Account(
            id=account_id, ledger=764, code=1, flags=flags, participant="participants/bank-a"
        )

    reply = await stub.CreateAccounts(
        service_pb2.CreateAccountsRequest(
            accounts=[
                account(funding),
                *(account(wallet, WALLET) for wallet in wallets),
                *(account(shop) for shop in shops),
            ]
        )
    )
    assert set(reply.results) == {resources_pb2.CREATE_ACCOUNT_RESULT_OK}
    return funding, wallets, shops


async def _pay(stub: Stub, run: str, load: Load) -> None:
    """The funding request, then every client's payments, all concurrently after it."""
    funding, wallets, shops = await _open_accounts(stub, run)
    grants = [
        transfer(funding, wallet, FUNDING, transfer_id=f"{run}-grant-{wallet}")
        for wallet in wallets
    ]
    await _send(stub, grants, load)

    async def client(number: int) -> None:
        rng = random.Random(number)
        for r in range(REQUESTS_PER_CLIENT):
            payments = [
                transfer(
                    rng.choice(wallets),
                    rng.choice(shops),
                    rng.randint(1, 3_000),
                    transfer_id=f"{run}-c{number}-r{r}-t{t}",
                )
                for t in range(TRANSFERS_PER_REQUEST)
            ]
            await _send(stub, payments, load)

    await asyncio.gather(*(client(number) for number in range(CLIENTS)))


async def _send(stub: Stub, transfers: list[resources_pb2.Transfer], load: Load) -> None:
    request = service_pb2.CreateTransfersRequest(transfers=transfers)
    results = await _create_transfers(stub, request, load)
    for sent, result in zip(transfers, results, strict=True):
        load.answers[sent.id] = result
        load.amounts[sent.id] = (sent.debit_account_id, sent.credit_account_id, sent.amount)


async def _after(load: Load, requests: int) -> None:
    """Returns once ``requests`` more requests than now have been answered."""
    goal = load.acknowledged_requests + requests
    while load.acknowledged_requests < goal:
        load.progress.clear()
        await load.progress.wait()


async def _assert_recorded_exactly_once(database_url: str, run: str, load: Load) -> int:
    applied = {i for i, result in load.answers.items() if result in APPLIED}
    refused = Counter(T.Name(result) for result in load.answers.values() if result not in APPLIED)
    # Only overdrafts are refused: the crashes themselves never fail a transfer.
    assert set(refused) <= {"CREATE_TRANSFER_RESULT_EXCEEDS_CREDITS"}, refused
    assert applied, "the load should pay"
    assert refused, "the load should overdraw some wallets"

    expected: Counter[tuple[str, str]] = Counter()
    for transfer_id in applied:
        debit, credit, amount = load.amounts[transfer_id]
        expected[debit, "debits"] += amount
        expected[credit, "credits"] += amount

    conn = await asyncpg.connect(_libpq(database_url))
    try:
        rows = await conn.fetch(
            "SELECT id, position, amount FROM transfers WHERE id LIKE $1 || '-%'", run
        )
        recorded = {row["id"] for row in rows}
        assert recorded == applied, (
            f"{len(applied - recorded)} acknowledged but missing, "
            f"{len(recorded - applied)} recorded but refused or never sent"
        )
        for row in rows:
            assert row["amount"] == load.amounts[row["id"]][2]
        size = await conn.fetchval("SELECT size FROM journal")
        positions = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT position) AS d, min(position) AS lo,"
            " max(position) AS hi FROM transfers"
        )
        assert (positions["n"], positions["d"], positions["lo"], positions["hi"]) == (
            size,
            size,
            0,
            size - 1,
        )
        accounts = await conn.fetch(
            "SELECT id, debits_posted, credits_posted, debits_pending, credits_pending,"
            " debits_must_not_exceed_credits FROM accounts WHERE id LIKE $1 || '-%'",
            run,
        )
        for account in accounts:
            assert account["debits_posted"] == expected[account["id"], "debits"], account["id"]
            assert account["credits_posted"] == expected[account["id"], "credits"], account["id"]
            assert account["debits_pending"] == account["credits_pending"] == 0
            if account["debits_must_not_exceed_credits"]:
                assert account["debits_posted"] <= account["credits_posted"], account["id"]
        return int(size)
    finally:
        await conn.close()


async def _assert_log_verifies(stub: Stub, database_url: str, size: int) -> None:
    """The restarted sealer covers the whole journal, and the auditor's verifier passes."""
    assert (await checkpoint_covering(stub, size, seconds=30)).tree_size == size
    assert await assert_log_verifies(database_url) == size


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A server of this module's own: the tests hold its commits and crash it."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("crash-pg") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _migrated(postgres: EmbeddedPostgres, name: str) -> str:
    url = await postgres.create_database(name)
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    return url


def _libpq(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(postgres: EmbeddedPostgres) -> asyncpg.Connection:
    return await asyncpg.connect(postgres.url("postgres", driver="postgresql"))


async def _hold_commits(postgres: EmbeddedPostgres, database_url: str) -> None:
    """Make every commit wait, once it is on disk, for a standby that does not exist; return
    when a batch of transfers is waiting so. It is committed, and its clients have no answer:
    the window a crash between commit and reply hits. (A transaction waiting for its standby
    still holds its locks: the batch is the waiter holding the journal's row lock, not the
    sealer publishing a checkpoint.)"""
    admin = await _admin(postgres)
    ledger = await asyncpg.connect(_libpq(database_url))
    try:
        await admin.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{GHOST_STANDBY}'")
        await admin.execute("SELECT pg_reload_conf()")
        for _ in range(200):
            waiting = await ledger.fetchval(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
                " WHERE a.wait_event = 'SyncRep' AND l.relation = 'journal'::regclass"
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("no batch of the ledger waited within 10 s")
    finally:
        await ledger.close()
        await admin.close()


async def _release_commits(postgres: EmbeddedPostgres) -> None:
    admin = await _admin(postgres)
    try:
        await admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()


async def test_a_killed_ledger_loses_no_acknowledged_transfer_and_applies_none_twice(
    postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = await _migrated(postgres, "ledger_crash_kill")
    ledger = LedgerProcess(url, tmp_path / "ledger.log", env=CRASH_SETTINGS)
    await ledger.start()
    load = Load()
    try:
        async with _stub(ledger.target) as stub:
            paying = asyncio.create_task(_pay(stub, "kill", load))
            # Killed right after a commit, before the reply ...
            await _after(load, 30)
            try:
                await _hold_commits(postgres, url)
                await ledger.kill()
            finally:
                await _release_commits(postgres)
            await ledger.start()
            # ... and at whatever moment the load is at.
            await _after(load, 30)
            await ledger.kill()
            await ledger.start()
            await paying
            assert load.retried_requests, "no request was in flight when the ledger was killed"
            assert load.exists(), "the batch committed before the kill was not retried"
            size = await _assert_recorded_exactly_once(url, "kill", load)
            await _assert_log_verifies(stub, url, size)
    finally:
        await ledger.stop()


async def test_acknowledged_transfers_survive_a_database_crash(
    postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = await _migrated(postgres, "ledger_crash_database")
    ledger = LedgerProcess(url, tmp_path / "ledger.log", env=CRASH_SETTINGS)
    await ledger.start()
    load = Load()
    try:
        async with _stub(ledger.target) as stub:
            paying = asyncio.create_task(_pay(stub, "crash", load))
            await _after(load, 30)
            try:
                await _hold_commits(postgres, url)
                postgres.crash()
                await asyncio.sleep(0.5)  # requests meanwhile get UNAVAILABLE, and are retried
                postgres.start()
            finally:
                await _release_commits(postgres)
            await paying
            assert ledger.alive(), "the ledger exited during the database outage"
            assert load.retried_requests, "no request was refused while the database was down"
            assert load.exists(), "the batch committed before the crash was lost, or not retried"
            size = await _assert_recorded_exactly_once(url, "crash", load)
            await _assert_log_verifies(stub, url, size)
    finally:
        await ledger.stop()

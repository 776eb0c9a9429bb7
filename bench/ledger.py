"""The ledger's benchmark: batched, single and hot-account transfers, checkpoint lag,
inclusion proofs and the verifier, each beside a naive baseline measured in the same run.

    make bench-ledger BENCH_ARGS="--seconds 10"

Starts its own PostgreSQL (fsync and synchronous_commit on), one ledger server
process and its sealer process (as Kubernetes runs them; ``--sealer-in-process``
seals in the server), on this machine. The naive baseline is what a ledger without batching
does: one database transaction per transfer, locking both accounts' rows, from
as many connections as there are clients. The two throughput figures are also
measured against this machine's ceilings (:mod:`bench.ceilings`) in ``--rounds``
alternating rounds, ceiling then scenario, and reported as medians with the median
of the rounds' ratios, since the machine's speed drifts. Single transfers are measured
twice: on a ``StreamingCreateTransfers`` stream per client, as the gateway sends a
payment's transfer (the target's figure), and as ``CreateTransfers`` calls, each beside
the do-nothing server answering the same way. Prints a table and writes
bench/reports/ledger-<time>.json. Figures are for comparison within one run and
between runs on this machine: the clients share its two cores with the server
and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.ceilings import database_ceiling, do_nothing_server
from bench.cpu import CpuMeter, budget_us
from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_dev.ports import free_port
from openloop_dev.postgres import EmbeddedPostgres
from openloop_ledger.app import MIGRATIONS_DIR
from openloop_ledger.audit.__main__ import verify
from openloop_ledger.audit.parallel import verify_database
from openloop_ledger.audit.sources import DatabaseSource
from openloop_ledger.config import DEVELOPMENT_LEAF_KEY, DEVELOPMENT_LOG_VERIFIER_KEY
from openloop_ledger.merkle.hashing import leaf_hash, node_hash
from openloop_ledger.merkle.proofs import verify_inclusion
from openloop_runtime import migrations

REPORT_DIR = Path(__file__).parent / "reports"
ACCOUNTS = 10_000
HOT = "hot-funding"
OK = resources_pb2.CREATE_TRANSFER_RESULT_OK


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    detail: dict[str, float] = field(default_factory=dict)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Ids:
    """Unique transfer ids for the whole run."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:8]
        self._next = 0

    def __next__(self) -> str:
        self._next += 1
        return f"b{self._prefix}-{self._next}"

    def __iter__(self) -> Iterator[str]:
        return self


def _transfer(ids: Ids, rng: random.Random, *, hot: bool) -> resources_pb2.Transfer:
    credit = f"acct-{rng.randrange(ACCOUNTS)}"
    debit = HOT if hot else f"acct-{rng.randrange(ACCOUNTS)}"
    while debit == credit:
        credit = f"acct-{rng.randrange(ACCOUNTS)}"
    return resources_pb2.Transfer(
        id=next(ids),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=rng.randrange(1, 10_000),
        ledger=764,
        code=1,
        user_data="payments/bench",
    )


# --- the system under test ---------------------------------------------------------------


@dataclass(frozen=True)
class LedgerUnderTest:
    target: str
    pid: int
    """The server's process."""
    sealer_pid: int | None
    """The sealer's process, where it runs on its own (as deployed); ``None``: in the server."""


@contextlib.contextmanager
def ledger_process(
    database_url: str, workdir: Path, *, unbatched: bool = False, sealer_in_process: bool = False
) -> Iterator[LedgerUnderTest]:
    """A ledger server and, unless ``sealer_in_process``, its sealer as a process of its own,
    as Kubernetes runs them; ``unbatched`` applies each request in its own transaction."""
    name = f"ledger{'-unbatched' if unbatched else ''}"
    env = {
        **os.environ,
        "OPENLOOP_LEDGER_DATABASE_URL": database_url,
        "OPENLOOP_LEDGER_LOG_LEVEL": "WARNING",
        "OPENLOOP_LEDGER_DB_POOL_SIZE": "8",
        "OPENLOOP_LEDGER_SEALER_IN_PROCESS": str(sealer_in_process).lower(),
    }
    if unbatched:
        env["OPENLOOP_LEDGER_BATCH_MAX_EVENTS"] = "1"
    with contextlib.ExitStack() as stack:
        sealer_pid = None
        if not sealer_in_process:
            _, sealer_pid = stack.enter_context(
                _ledger_command("seal", env, workdir / f"{name}-sealer.log")
            )
        target, pid = stack.enter_context(_ledger_command("serve", env, workdir / f"{name}.log"))
        yield LedgerUnderTest(target, pid, sealer_pid)


@contextlib.contextmanager
def _ledger_command(command: str, env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """``python -m openloop_ledger command`` on a free port, once its health service
    answers SERVING; its address and process id."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "openloop_ledger", command],
            env={**env, "OPENLOOP_LEDGER_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    target = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(300):
                if process.poll() is not None:
                    raise RuntimeError(f"openloop_ledger {command} exited; see {log}")
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                time.sleep(0.1)
        yield target, process.pid
    finally:
        process.terminate()
        process.wait(15)


async def open_accounts(stub: Any, naive: Any) -> None:
    accounts = [f"acct-{i}" for i in range(ACCOUNTS)] + [HOT]
    for start in range(0, len(accounts), 8000):
        chunk = accounts[start : start + 8000]
        reply = await stub.CreateAccounts(
            service_pb2.CreateAccountsRequest(
                accounts=[
                    resources_pb2.Account(
                        id=a, ledger=764, code=1, participant="participants/bench"
                    )
                    for a in chunk
                ]
            )
        )
        assert set(reply.results) <= {resources_pb2.CREATE_ACCOUNT_RESULT_OK}
    if naive is None:
        return
    await naive.execute("CREATE SEQUENCE naive_position MINVALUE 0 START 0")
    await naive.execute(
        "INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,"
        " credits_must_not_exceed_debits, user_data, participant_id)"
        " SELECT unnest($1::text[]), 764, 1, false, false, '', 'bench'",
        accounts,
    )


async def run_for(
    seconds: float, clients: int, one: Callable[[int], Awaitable[int]]
) -> tuple[int, float, list[float]]:
    """Each client calls ``one`` until time is up; returns (transfers, seconds, latencies)."""
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    done = [0] * clients

    async def client(number: int) -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            done[number] += await one(number)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return sum(done), time.perf_counter() - started, latencies


async def ledger_rate(
    stub: Any, seconds: float, clients: int, batch: int, *, hot: bool, streamed: bool = False
) -> tuple[float, list[float]]:
    """Transfers/s from ``clients`` clients each sending ``batch`` transfers a request and
    waiting for its answer: as ``CreateTransfers`` calls, or, ``streamed``, as requests on
    a ``StreamingCreateTransfers`` stream of the client's own (as the gateway sends them)."""
    ids = Ids()
    rngs = [random.Random(n) for n in range(clients)]
    streams = [stub.StreamingCreateTransfers() for _ in range(clients)] if streamed else []

    async def one(number: int) -> int:
        transfers = [_transfer(ids, rngs[number], hot=hot) for _ in range(batch)]
        if streamed:
            stream = streams[number]
            await stream.write(service_pb2.StreamingCreateTransfersRequest(transfers=transfers))
            reply = await stream.read()
        else:
            request = service_pb2.CreateTransfersRequest(transfers=transfers)
            reply = await stub.CreateTransfers(request, timeout=120)
        return sum(1 for result in reply.results if result == OK)

    try:
        count, elapsed, latencies = await run_for(seconds, clients, one)
    finally:
        for stream in streams:
            await stream.done_writing()
        for stream in streams:
            assert await stream.code() == grpc.StatusCode.OK
    return count / elapsed, latencies


async def naive_rate(
    pool: Any, seconds: float, clients: int, *, hot: bool
) -> tuple[float, list[float]]:
    """One transaction per transfer: lock both rows in id order, insert, update, commit."""
    ids = Ids()
    rngs = [random.Random(1000 + n) for n in range(clients)]

    async def one(number: int) -> int:
        t = _transfer(ids, rngs[number], hot=hot)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM accounts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                [t.debit_account_id, t.credit_account_id],
            )
            await conn.execute(
                "INSERT INTO transfers (id, position, debit_account_id, credit_account_id,"
                " amount, ledger, code, user_data, create_time)"
                " VALUES ($1, nextval('naive_position'), $2, $3, $4, 764, 1, $5, now())",
                t.id,
                t.debit_account_id,
                t.credit_account_id,
                t.amount,
                t.user_data,
            )
            await conn.execute(
                "UPDATE accounts SET debits_posted = debits_posted + $2 WHERE id = $1",
                t.debit_account_id,
                t.amount,
            )
            await conn.execute(
                "UPDATE accounts SET credits_posted = credits_posted + $2 WHERE id = $1",
                t.credit_account_id,
                t.amount,
            )
        return 1

    count, elapsed, latencies = await run_for(seconds, clients, one)
    return count / elapsed, latencies


# --- checkpoint lag ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def lag_monitor(url: str) -> AsyncIterator[list[float]]:
    """Samples (journal size, sealed size) every 20 ms; yields the lags, filled on exit.

    The lag of a sample is how long until a checkpoint covered the journal size it saw.
    """
    conn = await asyncpg.connect(_dsn(url))
    samples: list[tuple[float, int, int]] = []
    lags: list[float] = []

    async def sample() -> None:
        while True:
            row = await conn.fetchrow(
                "SELECT (SELECT size FROM journal WHERE id = 1) AS journal,"
                " (SELECT coalesce(max(tree_size), 0) FROM checkpoints) AS sealed"
            )
            samples.append((time.monotonic(), row["journal"], row["sealed"]))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(sample())
    try:
        yield lags
    finally:
        await asyncio.sleep(1.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await conn.close()
        later = 0
        for at, journal, _ in samples:
            if journal == 0:
                continue
            while later < len(samples) and (samples[later][0] < at or samples[later][2] < journal):
                later += 1
            if later < len(samples):
                lags.append(samples[later][0] - at)


# --- proofs and the verifier ---------------------------------------------------------------


def _proof_rounds(target: str, samples: int, transfer_ids: list[str]) -> ProofRounds:
    """Runs in a process of its own (see :func:`proof_latency`): two rounds of ``samples``
    proofs by leaf index at the latest checkpoint, each call blocking on gRPC's synchronous
    API and each proof verified against the checkpoint's root. The second round alternates
    each proof with a ``GetCheckpoint`` for the same size, which the server answers from
    memory: the same server, client and moment doing everything but the proof. Then a round
    the way a bank asks: by transfer id, against whatever checkpoint is the latest."""
    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.LedgerServiceStub(channel)
        checkpoint = stub.GetCheckpoint(service_pb2.GetCheckpointRequest()).checkpoint
        size = checkpoint.tree_size
        rng = random.Random(7)
        cold: list[float] = []
        warm: list[float] = []
        floor: list[float] = []
        for latencies in (cold, warm):
            for _ in range(samples):
                index = rng.randrange(size)
                started = time.perf_counter()
                proof = stub.GetInclusionProof(
                    service_pb2.GetInclusionProofRequest(leaf_index=index, tree_size=size)
                )
                latencies.append((time.perf_counter() - started) * 1000)
                verify_inclusion(
                    leaf_hash(proof.leaf), index, size, proof.hashes, checkpoint.root_hash
                )
                if latencies is warm:
                    started = time.perf_counter()
                    stub.GetCheckpoint(service_pb2.GetCheckpointRequest(tree_size=size))
                    floor.append((time.perf_counter() - started) * 1000)
        by_id: list[float] = []
        for transfer_id in transfer_ids:
            started = time.perf_counter()
            proof = stub.GetInclusionProof(
                service_pb2.GetInclusionProofRequest(transfer_id=transfer_id)
            )
            by_id.append((time.perf_counter() - started) * 1000)
            verify_inclusion(
                leaf_hash(proof.leaf),
                proof.leaf_index,
                proof.checkpoint.tree_size,
                proof.hashes,
                proof.checkpoint.root_hash,
            )
    return ProofRounds(cold, warm, floor, by_id, size)


@dataclass(frozen=True)
class ProofRounds:
    cold: list[float]
    warm: list[float]
    checkpoint: list[float]
    """``GetCheckpoint`` latencies, interleaved with the warm proofs."""
    by_id: list[float]
    """Proofs by transfer id against the latest checkpoint, after the warm round."""
    size: int


async def proof_latency(target: str, samples: int, transfer_ids: list[str]) -> ProofRounds:
    """Two rounds of ``samples`` inclusion proofs of random leaves at the latest checkpoint:
    the first right after the write scenarios (cold: the server's cache of the upper nodes
    proofs share is still filling, and it is cleaning up after the bursts), the second
    after it (warm, as a long-running ledger answers); then one proof for each of
    ``transfer_ids``, asked by id.

    The client runs in a fresh process with gRPC's synchronous API: this process carries
    millions of objects from the scenarios before and an event loop, whose collections and
    scheduling would otherwise be charged to the server."""
    await asyncio.sleep(2)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, _proof_rounds, target, samples, transfer_ids
        )


async def _vacuum(*urls: str) -> None:
    """Bring the databases to the state autovacuum keeps a long-running ledger in.

    Also before measuring: a server's connections keep the plans they made while
    ``transfers`` was empty (PostgreSQL caches a prepared statement's generic plan until
    ANALYZE invalidates it), and with such a plan each batch's duplicate lookup read the
    whole table, about 1 µs a row, until autovacuum (every minute at most) analysed it.
    """
    for url in urls:
        conn = await asyncpg.connect(_dsn(url))
        try:
            await conn.execute("VACUUM (ANALYZE)")
            # Write out what the bursts dirtied, so no background checkpoint lands mid-sample.
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
    await _autovacuum_idle(urls[0])


async def _autovacuum_idle(url: str, limit_seconds: float = 60.0) -> None:
    """Wait (up to ``limit_seconds``) until no autovacuum worker runs on the server."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        for _ in range(int(limit_seconds / 0.5)):
            running = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            )
            if not running:
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962's recursive definition, as a naive implementation computes it."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_mth(leaves[:split]), _mth(leaves[split:]))


def _naive_path(leaves: list[bytes], index: int) -> list[bytes]:
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*_naive_path(leaves[:split], index), _mth(leaves[split:])]
    return [*_naive_path(leaves[split:], index - split), _mth(leaves[:split])]


async def _sample_ids(url: str, count: int) -> list[str]:
    """``count`` transfer ids of the journal, drawn at random."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        rows = await conn.fetch("SELECT id FROM transfers ORDER BY random() LIMIT $1", count)
    finally:
        await conn.close()
    return [row["id"] for row in rows]


async def naive_proof_latency(url: str, size: int, samples: int) -> list[float]:
    """A proof without stored nodes: fetch every leaf hash and hash the tree."""
    conn = await asyncpg.connect(_dsn(url))
    rng = random.Random(7)
    latencies = []
    try:
        for _ in range(samples):
            index = rng.randrange(size)
            started = time.perf_counter()
            rows = await conn.fetch(
                "SELECT hashes FROM merkle_tiles WHERE tile_level = 0 ORDER BY tile_index"
            )
            data = b"".join(bytes(r["hashes"]) for r in rows)
            leaves = [data[i : i + 32] for i in range(0, size * 32, 32)]
            _naive_path(leaves, index)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return latencies


async def naive_verifier_rate(url: str) -> float:
    """Leaves recomputed with a fresh HMAC per field and the root by the recursive definition."""
    conn = await asyncpg.connect(_dsn(url))
    key = DEVELOPMENT_LEAF_KEY.encode()
    started = time.perf_counter()
    try:
        rows = await conn.fetch("SELECT * FROM transfers ORDER BY position")
        leaves = []
        for row in rows:
            parts = [
                str(row[c]).encode()
                for c in ("position", "create_time", "flags", "amount", "id", "pending_id")
            ]
            for column in ("debit_account_id", "credit_account_id", "user_data"):
                parts.append(hmac.new(key, row[column].encode(), hashlib.sha256).digest())
            leaves.append(leaf_hash(b"|".join(parts)))
        if leaves:
            _mth(leaves)
    finally:
        await conn.close()
    return len(rows) / (time.perf_counter() - started)


# --- the run -------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, workdir: Path) -> list[Figure]:
    server_url = os.environ.get("OPENLOOP_POSTGRES_URL")
    postgres = None
    if not server_url:
        postgres = EmbeddedPostgres(workdir / "pg")
        postgres.start()
    try:
        if postgres is None:
            raise SystemExit("unset OPENLOOP_POSTGRES_URL: the benchmark starts its own server")
        server = postgres
        ledger_url = await server.create_database("bench_ledger")
        naive_url = await server.create_database("bench_naive")
        unbatched_url = await server.create_database("bench_unbatched")
        for url in (ledger_url, naive_url, unbatched_url):
            await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
        settled_urls = [unbatched_url]

        async def ceiling_database() -> str:
            """An empty migrated database for one round of the database ceiling."""
            url = await server.create_database(f"bench_ceiling_{len(settled_urls)}")
            await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
            settled_urls.append(url)
            return url

        with do_nothing_server() as floor:
            sealing = {"sealer_in_process": args.sealer_in_process}
            with ledger_process(unbatched_url, workdir, unbatched=True, **sealing) as ledger:
                unbatched = await _measure_unbatched(args, ledger.target, unbatched_url)
            with ledger_process(ledger_url, workdir, **sealing) as ledger:
                return await _measure(
                    args,
                    ledger,
                    ledger_url,
                    naive_url,
                    unbatched,
                    ceilings=Ceilings(floor, ceiling_database, server.postmaster_pid()),
                    settled_urls=settled_urls,
                )
    finally:
        if postgres is not None:
            postgres.stop()


@dataclass(frozen=True)
class Ceilings:
    """Where the two throughput ceilings (:mod:`bench.ceilings`) are measured."""

    floor: tuple[str, int]
    """The do-nothing gRPC server's address and process id."""
    database: Callable[[], Awaitable[str]]
    """Makes an empty migrated database for one round of the database ceiling."""
    postmaster: int
    """The benchmark's PostgreSQL server, whose CPU time the meters read."""


@dataclass
class Rounds:
    """A throughput scenario and its ceiling, measured in alternating rounds (ceiling,
    scenario, ceiling, ...) so that each pair sees the machine in the same state: this
    machine's speed moves by half within minutes, so a ratio between figures measured
    minutes apart says little."""

    values: list[float] = field(default_factory=list)
    ceilings: list[float] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)
    ceiling_cpu: list[dict[str, float]] = field(default_factory=list)
    latencies: list[list[float]] = field(default_factory=list)

    def add(
        self,
        value: float,
        ceiling: float,
        cpu: dict[str, float],
        ceiling_cpu: dict[str, float],
        latencies: list[float] | None = None,
    ) -> None:
        self.values.append(value)
        self.ceilings.append(ceiling)
        self.cpu.append(cpu)
        self.ceiling_cpu.append(ceiling_cpu)
        self.latencies.append(latencies or [])

    @property
    def value(self) -> float:
        return statistics.median(self.values)

    @property
    def ceiling(self) -> float:
        return statistics.median(self.ceilings)

    def middle(self) -> int:
        """The round whose rate is the median (the lower middle for an even count)."""
        return sorted(range(len(self.values)), key=self.values.__getitem__)[
            (len(self.values) - 1) // 2
        ]

    def detail(self) -> dict[str, float]:
        """The ceiling, the median of the rounds' ratios to it, and every round."""
        pairs = list(zip(self.values, self.ceilings, strict=True))
        out = {
            "ceiling_median": self.ceiling,
            "ratio_to_ceiling_median": statistics.median(value / top for value, top in pairs),
        }
        for number, (value, ceiling) in enumerate(pairs, 1):
            out[f"round_{number}"] = value
            out[f"round_{number}_ceiling"] = ceiling
        return out


@dataclass(frozen=True)
class Unbatched:
    """Single-transfer rates of the same server committing each request alone."""

    streamed: float
    streamed_hot: float
    calls: float


async def _measure_unbatched(args: argparse.Namespace, target: str, database_url: str) -> Unbatched:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = service_pb2_grpc.LedgerServiceStub(channel)
        await open_accounts(stub, None)
        await ledger_rate(stub, 2, args.clients, 1, hot=False, streamed=True)  # warm up
        await _vacuum(database_url)
        rates = Unbatched(
            streamed=(
                await ledger_rate(stub, args.seconds, args.clients, 1, hot=False, streamed=True)
            )[0],
            streamed_hot=(
                await ledger_rate(stub, args.seconds, args.clients, 1, hot=True, streamed=True)
            )[0],
            calls=(await ledger_rate(stub, args.seconds, args.clients, 1, hot=False))[0],
        )
    print("unbatched baseline measured", flush=True)
    return rates


async def _batched_rounds(
    args: argparse.Namespace, stub: Any, ledger: LedgerUnderTest, ceilings: Ceilings
) -> Rounds:
    """Batched transfers, each round after the database ceiling on a fresh database."""
    rounds = Rounds()
    for _ in range(args.rounds):
        database = _dsn(await ceilings.database())
        ceiling, ceiling_cpu = await database_ceiling(
            database,
            accounts=ACCOUNTS,
            batch=args.batch,
            batches=30,
            postmaster=ceilings.postmaster,
        )
        meter = CpuMeter(ledger.pid, postmaster=ceilings.postmaster, sealer=ledger.sealer_pid)
        rate, latencies = await ledger_rate(
            stub, args.seconds, args.batch_clients, args.batch, hot=False
        )
        rounds.add(rate, ceiling, meter.per_unit(rate), ceiling_cpu, latencies)
    return rounds


async def _single_rounds(
    args: argparse.Namespace,
    stub: Any,
    ledger: LedgerUnderTest,
    floor_stub: Any,
    ceilings: Ceilings,
    *,
    streamed: bool,
) -> Rounds:
    """Single-transfer requests, each round after the do-nothing server, same clients, both
    on streams or both as calls."""
    await ledger_rate(floor_stub, 1, args.clients, 1, hot=False, streamed=streamed)  # warm up
    rounds = Rounds()
    _, floor_pid = ceilings.floor
    for _ in range(args.rounds):
        meter = CpuMeter(floor_pid, postmaster=ceilings.postmaster)
        ceiling, _ = await ledger_rate(
            floor_stub, args.seconds, args.clients, 1, hot=False, streamed=streamed
        )
        ceiling_cpu = meter.per_unit(ceiling)
        meter = CpuMeter(ledger.pid, postmaster=ceilings.postmaster, sealer=ledger.sealer_pid)
        rate, latencies = await ledger_rate(
            stub, args.seconds, args.clients, 1, hot=False, streamed=streamed
        )
        rounds.add(rate, ceiling, meter.per_unit(rate), ceiling_cpu, latencies)
    return rounds


async def _measure(
    args: argparse.Namespace,
    ledger: LedgerUnderTest,
    ledger_url: str,
    naive_url: str,
    unbatched: Unbatched,
    *,
    ceilings: Ceilings,
    settled_urls: list[str],
) -> list[Figure]:
    figures: list[Figure] = []
    seconds = args.seconds
    floor_target, _ = ceilings.floor
    naive = await asyncpg.create_pool(_dsn(naive_url), min_size=4, max_size=args.clients)
    async with grpc.aio.insecure_channel(ledger.target) as channel:
        stub = service_pb2_grpc.LedgerServiceStub(channel)
        await open_accounts(stub, naive)
        print("accounts opened; measuring", flush=True)
        await ledger_rate(stub, 2, 2, args.batch, hot=False)  # warm up
        await _vacuum(ledger_url, naive_url)

        async with (
            lag_monitor(ledger_url) as lags,
            grpc.aio.insecure_channel(floor_target) as floor_channel,
        ):
            floor_stub = service_pb2_grpc.LedgerServiceStub(floor_channel)
            batched = await _batched_rounds(args, stub, ledger, ceilings)
            # Four clients keep two batches in flight only part of the time: each waits
            # for its commit before sending more, so the figure is latency-bound (the
            # default before the sealer had its own process). Shown beside the saturated one.
            few_clients, few_latencies = await ledger_rate(stub, seconds, 4, args.batch, hot=False)
            hot_batched, _ = await ledger_rate(
                stub, seconds, args.batch_clients, args.batch, hot=True
            )
            single = await _single_rounds(args, stub, ledger, floor_stub, ceilings, streamed=True)
            hot_single, _ = await ledger_rate(
                stub, seconds, args.clients, 1, hot=True, streamed=True
            )
            calls = await _single_rounds(args, stub, ledger, floor_stub, ceilings, streamed=False)
        naive_plain, _ = await naive_rate(naive, seconds, args.clients, hot=False)
        naive_hot, _ = await naive_rate(naive, seconds, args.clients, hot=True)
        print("transfers measured; proofs next", flush=True)

        # CPU figures and latencies are those of each scenario's median round.
        middle, single_middle = batched.middle(), single.middle()
        single_latency = single.latencies[single_middle]
        calls_middle = calls.middle()
        figures += [
            Figure(
                f"ceiling: do-nothing Python gRPC server, {args.clients} clients with a "
                f"stream each, 1 transfer/request, median of {args.rounds} rounds",
                single.ceiling,
                "requests/s",
                target="bounds single-transfer requests (target 3000)",
                detail={
                    **single.ceiling_cpu[single_middle],
                    "cpu_us_budget_at_3000": budget_us(3_000),
                },
            ),
            Figure(
                f"ceiling: do-nothing Python gRPC server, {args.clients} clients, "
                f"1 transfer/call, median of {args.rounds} rounds",
                calls.ceiling,
                "requests/s",
                target="bounds single-transfer calls",
                detail=calls.ceiling_cpu[calls_middle],
            ),
            Figure(
                f"ceiling: the database half of {args.batch}-transfer batches, rows prepared, "
                f"median of {args.rounds} rounds",
                batched.ceiling,
                "transfers/s",
                target="bounds batched transfers (target 30000)",
                detail={
                    **batched.ceiling_cpu[middle],
                    "cpu_us_budget_at_30000": budget_us(30_000),
                },
            ),
            Figure(
                f"batched transfers ({args.batch}/request, {args.batch_clients} clients), "
                f"median of {args.rounds} rounds",
                batched.value,
                "transfers/s",
                naive_plain,
                ">= 30000",
                batched.value >= 30_000,
                {
                    **batched.detail(),
                    # A request's time, from sending its transfers to their results.
                    "request_p50_ms": _percentile(batched.latencies[middle], 0.5),
                    "request_p99_ms": _percentile(batched.latencies[middle], 0.99),
                    "transfers_per_s_with_4_clients": few_clients,
                    "request_p99_ms_with_4_clients": _percentile(few_latencies, 0.99),
                    **batched.cpu[middle],
                    "cpu_us_budget_at_30000": budget_us(30_000),
                },
            ),
            Figure(
                f"single-transfer requests, {args.clients} clients with a stream each, median "
                f"of {args.rounds} rounds (naive: same server, one transaction per request)",
                single.value,
                "transfers/s",
                unbatched.streamed,
                ">= 3000",
                single.value >= 3_000,
                {
                    **single.detail(),
                    "p50_ms": _percentile(single_latency, 0.5),
                    "p99_ms": _percentile(single_latency, 0.99),
                    "naive_sql_transfers_per_s": naive_plain,
                    **single.cpu[single_middle],
                    "cpu_us_budget_at_3000": budget_us(3_000),
                },
            ),
            Figure(
                f"single-transfer calls (CreateTransfers), {args.clients} clients, median of "
                f"{args.rounds} rounds (naive: same server, one transaction per call)",
                calls.value,
                "transfers/s",
                unbatched.calls,
                "- (a call costs the server a stream request's CPU twice over; see README)",
                None,
                {
                    **calls.detail(),
                    "p50_ms": _percentile(calls.latencies[calls_middle], 0.5),
                    "p99_ms": _percentile(calls.latencies[calls_middle], 0.99),
                    **calls.cpu[calls_middle],
                },
            ),
            Figure(
                "hot account, batched (every debit on one account)",
                hot_batched,
                "transfers/s",
                naive_hot,
                "within 2x of non-hot",
                hot_batched * 2 >= batched.value,
                {"ratio_to_non_hot": hot_batched / batched.value},
            ),
            Figure(
                f"hot account, single-transfer requests, {args.clients} clients with a stream each",
                hot_single,
                "transfers/s",
                unbatched.streamed_hot,
                "within 2x of non-hot",
                hot_single * 2 >= single.value,
                {"ratio_to_non_hot": hot_single / single.value},
            ),
            Figure(
                "checkpoint lag p99 (under the loads above)",
                _percentile(lags, 0.99),
                "s",
                None,
                "<= 1 s",
                _percentile(lags, 0.99) <= 1.0,
                {"p50_s": _percentile(lags, 0.5), "samples": float(len(lags))},
            ),
        ]

        await naive.close()
        # Proofs are a read path: measure them once the write bursts above have settled
        # (autovacuum would catch up within seconds in service; here it is done directly).
        # Every database the scenarios wrote to: autovacuum catching up on one of them during
        # the samples would take a core from the ledger on this two-core machine.
        await _vacuum(ledger_url, naive_url, *settled_urls)
        sample = await _sample_ids(ledger_url, args.proofs)
        rounds = await proof_latency(ledger.target, args.proofs, sample)
        proofs, size = rounds.warm, rounds.size
        naive_proofs = await naive_proof_latency(ledger_url, size, 3)
        figures.append(
            Figure(
                f"inclusion proof p99, warm ({args.proofs} proofs, {size:,} leaves, via gRPC)",
                _percentile(proofs, 0.99),
                "ms",
                _percentile(naive_proofs, 0.5),
                "<= 5 ms",
                _percentile(proofs, 0.99) <= 5.0,
                {
                    "p50_ms": _percentile(proofs, 0.5),
                    "cold_p50_ms": _percentile(rounds.cold, 0.5),
                    "cold_p99_ms": _percentile(rounds.cold, 0.99),
                    # The floor: GetCheckpoint, answered from memory, between the warm proofs.
                    "get_checkpoint_p50_ms": _percentile(rounds.checkpoint, 0.5),
                    "get_checkpoint_p99_ms": _percentile(rounds.checkpoint, 0.99),
                    # As a bank asks: by transfer id, against the latest checkpoint.
                    "by_transfer_id_p50_ms": _percentile(rounds.by_id, 0.5),
                    "by_transfer_id_p99_ms": _percentile(rounds.by_id, 0.99),
                },
            )
        )

    jobs = os.cpu_count() or 1
    gc.collect()
    started = time.perf_counter()
    report = await verify_database(
        ledger_url, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY, jobs=jobs
    )
    rate = report.leaves / (time.perf_counter() - started)
    source = await DatabaseSource.connect(ledger_url)
    try:
        started = time.perf_counter()
        serial = await verify(source, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY)
        serial_rate = serial.leaves / (time.perf_counter() - started)
    finally:
        await source.close()
    naive_verify = await naive_verifier_rate(ledger_url)
    figures.append(
        Figure(
            f"verifier ({report.leaves:,} leaves, {jobs} workers, "
            f"{'OK' if report.ok and serial.ok else 'FINDINGS'})",
            rate,
            "leaves/s",
            naive_verify,
            ">= 100000",
            rate >= 100_000 and report.ok and serial.ok,
            {"one_process_leaves_per_s": serial_rate},
        )
    )
    return figures


def _print(figures: list[Figure]) -> None:
    print()
    print(f"{'figure':<62} {'value':>14} {'naive':>14}  target")
    for f in figures:
        baseline = f"{f.baseline:,.1f}" if f.baseline is not None else "-"
        mark = "-" if f.met is None else "met" if f.met else "MISSED"
        print(f"{f.name:<62} {f.value:>14,.2f} {baseline:>14}  {f.target} ({mark}) {f.unit}")
        for key, value in f.detail.items():
            print(f"{'':<64}{key} = {value:,.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument("--clients", type=int, default=64, help="single-transfer clients")
    parser.add_argument("--batch", type=int, default=2000, help="transfers per batched request")
    parser.add_argument(
        "--batch-clients",
        type=int,
        default=16,
        help="batched clients: enough requests in flight to keep the batches pipelined",
    )
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument(
        "--sealer-in-process",
        action="store_true",
        help="seal in the ledger server, not in a process of its own as deployed",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="ceiling/scenario pairs for the two throughputs"
    )
    args = parser.parse_args()
    started_at = datetime.now(UTC).isoformat()
    with tempfile.TemporaryDirectory(prefix="openloop-bench-ledger-") as workdir:
        figures = asyncio.run(bench(args, Path(workdir)))
    _print(figures)
    REPORT_DIR.mkdir(exist_ok=True)
    path = REPORT_DIR / f"ledger-{started_at.replace(':', '')}.json"
    path.write_text(
        json.dumps(
            {
                "started_at": started_at,
                "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.platform()}",
                "args": vars(args),
                "figures": [f.__dict__ for f in figures],
            },
            indent=2,
        )
    )
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()

"""Who seals, and only who: the sealer's leadership (a PostgreSQL session-level advisory
lock) against the ways a leader can stop answering.

- two sealers running: one session holds the lock, the other stands by;
- a leader whose database session is killed mid-seal writes nothing more: its checkpoint
  and tiles go through the session that held the lock, which no longer exists;
- a leader whose database session hangs (a frozen backend, an unreachable server) still
  stops on SIGTERM within the pod's grace period, rather than waiting for the kubelet's
  SIGKILL;
- a leader whose host vanishes without closing its socket (a lost node: no FIN, no RST
  reaches PostgreSQL) does not keep the lock, and so every other sealer, for the hours
  TCP keepalive would take: PostgreSQL ends the leader's session once it has been idle for
  the sealer timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from openloop.ledger.v1 import service_pb2
from openloop_ledger import pg
from openloop_ledger.config import (
    DEVELOPMENT_LEAF_KEY,
    DEVELOPMENT_LOG_SIGNING_KEY,
)
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.merkle.note import Signer
from openloop_ledger.sealer import SEALER_LOCK, Sealer
from openloop_runtime.db import create_engine
from services.ledger.tests.ledger_helpers import (
    assert_log_verifies,
    checkpoint_covering,
    commit_transfers,
    journal_size_with,
    sealed_through,
)
from services.ledger.tests.ledger_process import LedgerProcess

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub

SEALER_SETTINGS = {"OPENLOOP_LEDGER_CHECKPOINT_INTERVAL_SECONDS": "0.1"}


@pytest.fixture(scope="module")
def ledger_settings() -> dict[str, Any]:
    return {"sealer_in_process": False}


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _lock_holders(database_url: str) -> list[int]:
    """Backend pids that hold the sealer's advisory lock on this database (advisory locks
    are per database)."""
    conn = await asyncpg.connect(_libpq(database_url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = $1 AND objid = $2 AND objsubid = 1",
            SEALER_LOCK >> 32,
            SEALER_LOCK & 0xFFFF_FFFF,
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


async def _checkpoint_sizes(database_url: str) -> list[int]:
    conn = await asyncpg.connect(_libpq(database_url))
    try:
        return [row["tree_size"] for row in await conn.fetch("SELECT tree_size FROM checkpoints")]
    finally:
        await conn.close()


async def _latest_size(ledger: Stub) -> int:
    reply = await ledger.GetCheckpoint(service_pb2.GetCheckpointRequest())
    return reply.checkpoint.tree_size


@contextlib.asynccontextmanager
async def _sealers(*sealers: LedgerProcess) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for sealer in sealers:
            await sealer.stop()


async def test_of_two_sealers_one_session_holds_the_lock(
    ledger: Stub, ledger_database: str, tmp_path: Path
) -> None:
    first = LedgerProcess(ledger_database, tmp_path / "a.log", command="seal", env=SEALER_SETTINGS)
    second = LedgerProcess(ledger_database, tmp_path / "b.log", command="seal", env=SEALER_SETTINGS)
    async with _sealers(first, second):
        await first.start()
        await second.start()
        ids = await commit_transfers(ledger, 2)
        await sealed_through(ledger, ids[-1])
        for _ in range(5):  # while both poll
            assert len(await _lock_holders(ledger_database)) == 1
            await asyncio.sleep(0.1)


async def test_a_leader_whose_session_is_killed_mid_seal_writes_nothing(
    ledger: Stub, ledger_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leader A has read the journal and is hashing when its session is killed; B takes the
    lock and seals further than A would have. A's checkpoint and tiles (a shorter partial
    tile would overwrite B's) must never be written: the log stays B's and verifies."""
    first = await commit_transfers(ledger, 3)
    size_a = await journal_size_with(ledger, first[-1])
    encoder = LeafEncoder(DEVELOPMENT_LEAF_KEY.encode())
    signers = [Signer.from_key(DEVELOPMENT_LOG_SIGNING_KEY)]
    engine_a, engine_b = create_engine(ledger_database), create_engine(ledger_database)
    sealer_a = Sealer(engine_a, encoder, signers, None, interval=0.1)
    sealer_b = Sealer(engine_b, encoder, signers, None, interval=0.1)
    read, resume = asyncio.Event(), asyncio.Event()
    journal_rows = pg.journal_rows
    leader: list[Any] = []

    async def rows_then_pause(conn: Any, start: int, end: int) -> Any:
        rows = await journal_rows(conn, start, end)
        if conn is leader[0]:
            read.set()
            await resume.wait()
        return rows

    monkeypatch.setattr(pg, "journal_rows", rows_then_pause)
    try:
        async with pg.connection(engine_a) as conn:
            leader.append(conn)
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", SEALER_LOCK)
            sealing = asyncio.create_task(sealer_a.seal(conn))
            await read.wait()
            # Killed between its reads and its writes (an operator, a failover, a timeout).
            async with pg.connection(engine_b) as other:
                await other.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
            later = await commit_transfers(ledger, 2)
            size_b = await journal_size_with(ledger, later[-1])
            async with sealer_b.running():
                await checkpoint_covering(ledger, size_b, seconds=15)
            resume.set()
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                await sealing
    finally:
        resume.set()
        await engine_a.dispose()
        await engine_b.dispose()
    assert size_a < size_b
    assert size_a not in await _checkpoint_sizes(ledger_database)
    await assert_log_verifies(ledger_database)


async def test_a_leader_stops_on_sigterm_while_its_database_session_hangs(
    ledger: Stub, ledger_database: str, tmp_path: Path
) -> None:
    """The leader's backend freezes (SIGSTOP: as a server that stopped answering). SIGTERM
    must still end the sealer within the grace period Kubernetes gives (30 s; here 10),
    and with exit status 0, not by the SIGKILL that follows it."""
    sealer = LedgerProcess(ledger_database, tmp_path / "s.log", command="seal", env=SEALER_SETTINGS)
    async with _sealers(sealer):
        await sealer.start()
        ids = await commit_transfers(ledger, 1)
        await sealed_through(ledger, ids[-1])
        (backend,) = await _lock_holders(ledger_database)
        os.kill(backend, signal.SIGSTOP)
        try:
            await asyncio.sleep(0.5)  # the leader's next look now waits on the frozen backend
            started = time.monotonic()
            assert sealer._process is not None
            sealer._process.terminate()
            try:
                await asyncio.wait_for(sealer._process.wait(), 10)
            except TimeoutError:
                pytest.fail("the sealer did not stop within 10 s of SIGTERM")
            stopped_in = time.monotonic() - started
        finally:
            os.kill(backend, signal.SIGCONT)
    assert sealer.returncode == 0, (tmp_path / "s.log").read_text()[-3000:]
    assert stopped_in < 10


class VanishingRelay:
    """A TCP relay to PostgreSQL that, once its client is gone, keeps the server's side of
    the connection open: what PostgreSQL sees of a client whose host vanished (a lost
    node, a partition), since no FIN or RST ever reaches it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._held: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> VanishingRelay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._held:
            writer.close()
        for task in self._tasks:
            task.cancel()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._held.append(up_writer)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()

        back = asyncio.create_task(pump(up_reader, writer))
        self._tasks.add(back)
        await pump(reader, up_writer)  # until the client is gone; never close up_writer
        back.cancel()
        writer.close()


async def test_a_standby_takes_over_from_a_leader_whose_host_vanished(
    ledger: Stub, ledger_database: str, tmp_path: Path
) -> None:
    url = make_url(ledger_database)
    timeout = {"OPENLOOP_LEDGER_SEALER_TIMEOUT_SECONDS": "2"}
    async with VanishingRelay(url.host or "127.0.0.1", url.port or 5432) as relay:
        through_relay = url.set(host="127.0.0.1", port=relay.port).render_as_string(
            hide_password=False
        )
        leader = LedgerProcess(
            through_relay,
            tmp_path / "leader.log",
            command="seal",
            env={**SEALER_SETTINGS, **timeout},
        )
        standby = LedgerProcess(
            ledger_database,
            tmp_path / "standby.log",
            command="seal",
            env={**SEALER_SETTINGS, **timeout},
        )
        async with _sealers(leader, standby):
            await leader.start()
            ids = await commit_transfers(ledger, 2)
            await sealed_through(ledger, ids[-1])
            await standby.start()
            await leader.kill()  # its host is gone; PostgreSQL's side of its session is not
            after = await commit_transfers(ledger, 2)
            size = await journal_size_with(ledger, after[-1])
            # The leader's session is idle from now on: PostgreSQL must end it (the sealer
            # timeout, 2 s) and with it the lock, so the standby seals within a few seconds,
            # not after TCP keepalive's two hours.
            await checkpoint_covering(ledger, size, seconds=15)
            assert await _latest_size(ledger) >= size


async def test_a_sealer_with_another_leaf_key_refuses_to_extend_the_log(
    ledger: Stub, ledger_database: str, tmp_path: Path
) -> None:
    """A sealer whose leaf key is not the log's (here: not the server's, which proofs use)
    must not sign a checkpoint: one signed over leaves nobody can match is there for good."""
    right = LedgerProcess(ledger_database, tmp_path / "r.log", command="seal", env=SEALER_SETTINGS)
    async with _sealers(right):
        await right.start()
        ids = await commit_transfers(ledger, 2)
        await sealed_through(ledger, ids[-1])
    sealed = await _latest_size(ledger)
    wrong = LedgerProcess(
        ledger_database,
        tmp_path / "w.log",
        command="seal",
        env={**SEALER_SETTINGS, "OPENLOOP_LEDGER_LEAF_KEY": "another-leaf-key-" + "x" * 32},
    )
    async with _sealers(wrong):
        await wrong.start()
        ids = await commit_transfers(ledger, 2)
        await asyncio.sleep(1.0)  # ten of its intervals
        assert await _latest_size(ledger) == sealed
    assert "refusing to seal" in (tmp_path / "w.log").read_text()
    await assert_log_verifies(ledger_database)

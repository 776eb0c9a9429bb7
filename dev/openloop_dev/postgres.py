"""A real PostgreSQL server started for the developer, the tests and CI.

The binaries come from the ``pgserver`` wheel (PostgreSQL 16 built for PyPI), or
from ``OPENLOOP_PG_BIN_DIR`` when a system installation should be used. We drive
``initdb``/``pg_ctl`` ourselves rather than through pgserver's own lifecycle so the
server listens on TCP loopback (as it would in production), keeps ``fsync`` and
``synchronous_commit`` on, and stops exactly when the mesh stops.

PostgreSQL refuses to run as root; when we are root (CI is) the server runs as a
dedicated unprivileged system user created on first use.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from openloop_dev.ports import free_port

_SYSTEM_USER = "openloop-pg"


def binaries_dir() -> Path:
    configured = os.environ.get("OPENLOOP_PG_BIN_DIR")
    if configured:
        return Path(configured)
    # The wheel's binaries, found without importing pgserver (whose import has side effects).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver is not installed and OPENLOOP_PG_BIN_DIR is not set")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    return _SYSTEM_USER


def _open_path_to(path: Path, user: str) -> None:
    """Give ``user`` its data folder and traversal of every parent above it."""
    entry = pwd.getpwnam(user)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
    shutil.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    superuser: str = "postgres"

    def __post_init__(self) -> None:
        self._bin = binaries_dir()
        self._user = _run_as_user()

    def _pg(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if self._user is not None:
            # runuser rather than subprocess's ``user=``: to switch users in the child,
            # Python forks with fork() instead of vfork(), which runs gRPC's fork handlers
            # when this process has started gRPC (the tests, the mesh); they start gRPC
            # threads in the child, and the child often died of SIGSEGV before
            # pg_ctl ran (8 times in a day of running the ledger crash tests).
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(
            command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/"
        )
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): {said}")

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _open_path_to(self.data_dir, self._user)
        if not (self.data_dir / "PG_VERSION").exists():
            self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )
        options = " ".join(
            [
                f"-h {self.host}",
                f"-p {self.port}",
                "-k ''",  # TCP only: a socket in a deep data folder exceeds 107 bytes
                "-c fsync=on",
                "-c synchronous_commit=on",
                "-c max_connections=300",
                "-c shared_buffers=256MB",
            ]
        )
        log = self.data_dir / "server.log"
        try:
            self._pg(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-w", "-t", "60", "-o",
                options, "start",
            )  # fmt: skip
        except RuntimeError as failed:
            # pg_ctl only says it could not start; the server says why in its log.
            said = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            raise RuntimeError("\n".join([str(failed), *said])) from None

    def stop(self) -> None:
        """A clean stop: the shutdown checkpoint writes every dirty buffer first, which for
        the tests' server (hundreds of databases) on a slow, busy disk can take longer than
        pg_ctl's default minute, so it gets ten."""
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "600", "stop")

    def postmaster_pid(self) -> int:
        """The running server's postmaster (the first line of ``postmaster.pid``)."""
        return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])

    def crash(self) -> None:
        """Stop at once, as a power cut would leave the server: no shutdown checkpoint, and
        the next ``start`` recovers from the write-ahead log. Files the operating system had
        not yet written survive, so this shows recovery, not that the disk honours fsync."""
        self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def url(self, database: str, *, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{self.superuser}@{self.host}:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        """Create ``name`` unless it exists; return its SQLAlchemy URL."""
        await create_database(self.url("postgres", driver="postgresql"), name)
        return self.url(name)


async def create_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server at ``server_url`` (a libpq URL) unless it exists."""
    connection = await asyncpg.connect(server_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def terminate_connections(database_url: str) -> int:
    """Close every other session on the database ``database_url`` names (its SQLAlchemy or
    libpq URL), as a restart or a failover does; returns how many were closed."""
    libpq = database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(libpq)
    try:
        closed: int = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            libpq.rsplit("/", 1)[1],
        )
        return closed
    finally:
        await connection.close()


async def wait_for_lock_waiters(database_url: str, count: int = 1, *, within: float = 10.0) -> None:
    """Return once ``count`` sessions on the database ``database_url`` names wait for a lock:
    the calls a test started have reached the database and queued, however slow the machine
    (a fixed sleep only hopes they have). AssertionError if they have not ``within`` seconds."""
    libpq = database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(libpq)
    try:
        deadline = time.monotonic() + within
        while True:
            waiting: int = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{waiting} of {count} sessions waited for a lock")
            await asyncio.sleep(0.02)
    finally:
        await connection.close()


async def done_or_waiting_for_lock(
    call: asyncio.Future[Any], database_url: str, *, within: float = 10.0
) -> bool:
    """True once ``call`` is done, False once a session on the database waits for a lock,
    whichever comes first: a test can start a write that should queue behind a transaction
    it holds open and see it either queued or, where nothing makes it wait, finished.
    AssertionError if neither happens ``within`` seconds."""
    waiting = asyncio.ensure_future(wait_for_lock_waiters(database_url, within=within))
    await asyncio.wait({call, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if call.done():
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        return True
    waiting.result()
    return False

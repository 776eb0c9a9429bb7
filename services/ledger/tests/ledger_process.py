"""``python -m openloop_ledger`` as a real process, for the tests that kill, stop or split it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from openloop_dev.ports import free_port


class LedgerProcess:
    """``python -m openloop_ledger [command]`` on a fixed port, so clients reconnect to its
    successor; ``env`` adds to the settings (``OPENLOOP_LEDGER_*``) it starts with."""

    def __init__(
        self, database_url: str, log: Path, *, command: str = "serve", env: Mapping[str, str]
    ) -> None:
        self.port = free_port()
        self._command = command
        self._env = {
            **os.environ,
            "OPENLOOP_LEDGER_DATABASE_URL": database_url,
            "OPENLOOP_LEDGER_PORT": str(self.port),
            "OPENLOOP_LEDGER_LOG_LEVEL": "WARNING",
            **env,
        }
        self._log = log
        self._process: asyncio.subprocess.Process | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    async def start(self) -> None:
        """Start it and wait until its health service answers SERVING."""
        with self._log.open("ab") as log:
            self._process = process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "openloop_ledger",
                self._command,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with grpc.aio.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):
                assert process.returncode is None, self._log.read_text()[-3000:]
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"openloop_ledger {self._command} did not become healthy in 30 s")

    async def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as the kernel's OOM killer or a lost node does."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        await self._process.wait()

    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def stop(self) -> None:
        """SIGTERM, as Kubernetes stops a pod; SIGKILL after 15 s."""
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 15)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

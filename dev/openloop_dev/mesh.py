"""Start and stop the whole mesh on one machine: PostgreSQL, five services, Envoy.

The same code serves ``make up`` (fixed, documented ports under ``.devstack/``),
the end-to-end tests (free ports in a temporary folder) and the benchmark. Each
service runs as its own process exactly as in Kubernetes: ``migrate`` first, then
``serve``, configured only through ``OPENLOOP_<SERVICE>_*`` environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from openloop_dev.envoy import envoy_binary, render_envoy_config
from openloop_dev.identity_provider import identity_env
from openloop_dev.operators import operator_env
from openloop_dev.pki import DevPki, ensure_dev_pki
from openloop_dev.ports import free_port
from openloop_dev.postgres import EmbeddedPostgres, create_database
from openloop_ledger.merkle.note import Signer, generate_signer_key

SERVICES = ("identity", "rules", "ledger", "settlement", "gateway")
"""In start order: the gateway last, once everything it calls is up."""
SEALER = "ledger-sealer"
"""The ledger's Merkle-log sealer, a process of its own as in Kubernetes
(``python -m openloop_ledger seal``); it serves only the health service."""
PROCESSES = ("identity", "rules", "ledger", SEALER, "settlement", "gateway")
"""Every process of the mesh but Envoy, in start order."""
PARTICIPANTS = ("treasury", "bank-a", "bank-b", "operator")
DEFAULT_PORTS = {
    "identity": 50051,
    "rules": 50052,
    "ledger": 50053,
    "settlement": 50054,
    "gateway": 50055,
    SEALER: 50056,
}


@dataclass(frozen=True)
class MeshLayout:
    """Where everything of one running mesh is; written to ``stack.json`` for other commands."""

    workdir: Path
    service_ports: Mapping[str, int]
    edge_port: int
    admin_port: int
    postgres_port: int
    database_urls: Mapping[str, str] = field(default_factory=dict)

    @property
    def edge_target(self) -> str:
        return f"localhost:{self.edge_port}"

    @property
    def pki_dir(self) -> Path:
        return self.workdir / "pki"

    @property
    def trace_dir(self) -> Path:
        return self.workdir / "traces"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def target(self, service: str) -> str:
        return f"127.0.0.1:{self.service_ports[service]}"

    def save(self) -> None:
        state = asdict(self)
        state["workdir"] = str(self.workdir)
        (self.workdir / "stack.json").write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, workdir: Path) -> MeshLayout:
        state = json.loads((workdir / "stack.json").read_text())
        state["workdir"] = Path(state["workdir"])
        return cls(**state)

    @classmethod
    def fixed(cls, workdir: Path) -> MeshLayout:
        return cls(workdir, DEFAULT_PORTS, edge_port=8443, admin_port=9901, postgres_port=55432)

    @classmethod
    def ephemeral(cls, workdir: Path) -> MeshLayout:
        return cls(
            workdir,
            {name: free_port() for name in PROCESSES},
            edge_port=free_port(),
            admin_port=free_port(),
            postgres_port=free_port(),
        )


class MeshError(RuntimeError):
    pass


class Mesh:
    """A running mesh. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, layout: MeshLayout, *, external_postgres_url: str | None = None) -> None:
        self.layout = layout
        self._external_postgres_url = external_postgres_url
        self._postgres: EmbeddedPostgres | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self.pki: DevPki | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Mesh:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for directory in (self.layout.workdir, self.layout.trace_dir, self.layout.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        try:
            urls = self._start_postgres()
            self.layout = MeshLayout(**{**asdict(self.layout), "database_urls": urls})
            self.layout.save()
            self.pki = ensure_dev_pki(self.layout.pki_dir, PARTICIPANTS)
            for service in SERVICES:
                self._run_migrations(service)
            for process in PROCESSES:
                self.start_service(process)
            self._start_envoy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in ("envoy", *reversed(PROCESSES)):
            self.stop_service(name)
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None

    # -- PostgreSQL ------------------------------------------------------------------------
    def _start_postgres(self) -> dict[str, str]:
        server_url = self._external_postgres_url
        if server_url is None:
            self._postgres = EmbeddedPostgres(
                self.layout.workdir / "pgdata", port=self.layout.postgres_port
            )
            self._postgres.start()
            server_url = self._postgres.url("postgres", driver="postgresql")
        base = server_url.rsplit("/", 1)[0] if server_url.count("/") > 2 else server_url
        urls = {}
        for service in SERVICES:
            database = f"openloop_{service}"
            asyncio.run(create_database(f"{base}/postgres", database))
            urls[service] = f"{base}/{database}".replace("postgresql://", "postgresql+asyncpg://")
        return urls

    # -- services --------------------------------------------------------------------------
    def service_env(self, service: str) -> dict[str, str]:
        if service == SEALER:
            # The ledger's settings, its keys and database, on a port of its own.
            return {
                **self.service_env("ledger"),
                "OPENLOOP_LEDGER_PORT": str(self.layout.service_ports[SEALER]),
                "OPENLOOP_LEDGER_TRACE_FILE": str(self.layout.trace_dir / f"{SEALER}.jsonl"),
            }
        prefix = f"OPENLOOP_{service.upper()}_"
        env = {
            **os.environ,
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(self.layout.service_ports[service]),
            f"{prefix}DATABASE_URL": self.layout.database_urls[service],
            f"{prefix}TRACE_FILE": str(self.layout.trace_dir / f"{service}.jsonl"),
            f"{prefix}DB_POOL_SIZE": "10",
        }
        if service == "identity":
            env[f"{prefix}CITIZEN_ID_HMAC_KEY"] = self._hmac_key()
            env.update(identity_env(self.layout.workdir))
            env.update(operator_env(self.layout.workdir, "identity"))
            env[f"{prefix}SETTLEMENT_TARGET"] = self.layout.target("settlement")
        if service == "rules":
            env.update(operator_env(self.layout.workdir, "rules"))
        if service == "settlement":
            env.update(operator_env(self.layout.workdir, "settlement"))
            # No scheduled cut-off unless the developer's shell sets one
            # (OPENLOOP_SETTLEMENT_CUTOFF_TIMES): the demo's cycles close when its operator
            # closes them, and a cut-off passing mid-demo would cut its cycle in two.
        if service == "ledger":
            env[f"{prefix}LEAF_KEY"] = self._secret("ledger-leaf.key", secrets.token_hex(32))
            env[f"{prefix}LOG_SIGNING_KEY"] = self._secret(
                "ledger-log-signing.key", generate_signer_key("openloop.dev/ledger")
            )
            env[f"{prefix}SEALER_IN_PROCESS"] = "false"  # the mesh runs SEALER
        if service == "gateway":
            for upstream in ("identity", "rules", "ledger", "settlement"):
                env[f"{prefix}{upstream.upper()}_TARGET"] = self.layout.target(upstream)
            env[f"{prefix}RECONCILE_AFTER_SECONDS"] = env.get(
                f"{prefix}RECONCILE_AFTER_SECONDS", "10"
            )
        return env

    def _secret(self, name: str, initial: str) -> str:
        """A development secret kept with the mesh's data, made on first use."""
        path = self.layout.workdir / name
        if not path.exists():
            path.write_text(initial)
            path.chmod(0o600)
        return path.read_text().strip()

    def ledger_verifier_key(self) -> str:
        """The public key auditors check this mesh's checkpoints with."""
        signing_key = self.service_env("ledger")["OPENLOOP_LEDGER_LOG_SIGNING_KEY"]
        return Signer.from_key(signing_key).verifier_key()

    def _hmac_key(self) -> str:
        """A development key kept with the mesh's data, so citizens stay findable across runs."""
        path = self.layout.workdir / "identity-hmac.key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _run_migrations(self, service: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", f"openloop_{service}", "migrate"],
            env=self.service_env(service),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise MeshError(
                f"{service} migrations failed:\n{result.stdout.decode()[-3000:]}"
                f"{result.stderr.decode()[-3000:]}"
            )

    def start_service(self, service: str) -> None:
        """Start one of :data:`PROCESSES` and wait until its health service answers."""
        command = ["openloop_ledger", "seal"] if service == SEALER else [f"openloop_{service}"]
        log = (self.layout.log_dir / f"{service}.log").open("ab")
        self._processes[service] = subprocess.Popen(
            [sys.executable, "-m", *command],
            env=self.service_env(service),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop children in order
        )
        self._wait_healthy(service)

    def stop_service(self, name: str, *, timeout: float = 15.0) -> None:
        process = self._processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait_healthy(self, service: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.layout.target(service)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._check_alive(service)
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                time.sleep(0.2)
        raise MeshError(
            f"{service} did not become healthy in {timeout}s; {self._log_tail(service)}"
        )

    def _check_alive(self, name: str) -> None:
        process = self._processes[name]
        if process.poll() is not None:
            raise MeshError(f"{name} exited with {process.returncode}; {self._log_tail(name)}")

    def _log_tail(self, name: str) -> str:
        path = self.layout.log_dir / f"{name}.log"
        tail = path.read_text(errors="replace")[-4000:] if path.exists() else ""
        return f"log {path}:\n{tail}"

    # -- Envoy -----------------------------------------------------------------------------
    def _start_envoy(self, timeout: float = 60.0) -> None:
        config = self.layout.workdir / "envoy.yaml"
        config.write_text(
            render_envoy_config(
                listen_address="127.0.0.1",
                listen_port=self.layout.edge_port,
                admin_port=self.layout.admin_port,
                gateway_host="127.0.0.1",
                gateway_port=self.layout.service_ports["gateway"],
                cert_dir=self.layout.pki_dir,
            )
        )
        log = (self.layout.log_dir / "envoy.log").open("ab")
        self._processes["envoy"] = subprocess.Popen(
            [envoy_binary(), "-c", str(config), "--use-dynamic-base-id", "--log-level", "warn"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("envoy")
            if self._edge_ready():
                return
            time.sleep(0.2)
        raise MeshError(f"envoy did not become ready in {timeout}s; {self._log_tail('envoy')}")

    def _edge_ready(self) -> bool:
        """Envoy is live and its gateway cluster has a healthy host."""
        url = f"http://127.0.0.1:{self.layout.admin_port}/clusters"
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                body: str = reply.read().decode()
        except OSError:
            return False
        return any(
            "::health_flags::healthy" in line and "gateway" in line for line in body.splitlines()
        )

    @contextlib.contextmanager
    def service_stopped(self, service: str) -> Iterator[None]:
        """Take one service down for a while (outage tests), then bring it back."""
        self.stop_service(service)
        try:
            yield
        finally:
            self.start_service(service)

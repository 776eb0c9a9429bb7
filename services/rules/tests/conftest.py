"""The rules service on a real gRPC server and a real PostgreSQL database.

``rules_service`` starts replicas on one database with an operator key the service
trusts, a settable clock and a fast schedule poll; tests sign operator tokens with
``operator_token``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import grpc

from openloop.rules.v1 import service_pb2_grpc
from openloop_rules.app import MIGRATIONS_DIR, build
from openloop_rules.config import RulesSettings
from openloop_rules.operators import Role, mint
from openloop_runtime import migrations
from openloop_runtime.operators import OperatorKey
from openloop_runtime.server import running_server

FreshDatabase = Callable[[str], Awaitable[str]]

_OPERATOR = OperatorKey.generate("ops-test-1")
OPERATOR_KID = _OPERATOR.kid
OPERATOR_PRIVATE_PEM = _OPERATOR.private_pem
OPERATOR_PUBLIC_PEM = _OPERATOR.public_pem()


class Clock:
    """A clock tests move by hand; it starts at real time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def operator_token(
    subject: str = "alice", role: Role = Role.OPERATOR, now: datetime | None = None
) -> list[tuple[str, str]]:
    token = mint(OPERATOR_PRIVATE_PEM, kid=OPERATOR_KID, subject=subject, role=role, now=now)
    return [("authorization", f"Bearer {token}")]


@dataclass
class Replica:
    stub: service_pb2_grpc.RulesServiceStub
    settings: RulesSettings
    target: str


async def migrated(fresh_database: FreshDatabase, prefix: str = "rules") -> str:
    url = await fresh_database(prefix)
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    return url


def settings_for(url: str, **overrides: object) -> RulesSettings:
    values: dict[str, object] = {
        "port": 0,
        "database_url": url,
        "operator_keys": {OPERATOR_KID: OPERATOR_PUBLIC_PEM},
        "schedule_poll_seconds": 0.05,
        "activation_margin_seconds": 2.0,
        "record_interval_seconds": 0.05,
    }
    values.update(overrides)
    return RulesSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def replica(
    url: str, clock: Callable[[], datetime], **overrides: object
) -> AsyncIterator[Replica]:
    settings = settings_for(url, **overrides)
    async with (
        running_server("rules.openloop.dev", settings, build(settings, clock)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield Replica(
            service_pb2_grpc.RulesServiceStub(channel), settings, f"127.0.0.1:{running.port}"
        )

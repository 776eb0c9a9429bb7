"""A real ledger: migrated PostgreSQL database and gRPC server, one per test module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
import pytest
import pytest_asyncio

from openloop.ledger.v1 import service_pb2_grpc
from openloop_ledger.app import MIGRATIONS_DIR, build
from openloop_ledger.config import LedgerSettings
from openloop_runtime import migrations
from openloop_runtime.server import running_server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger_database(fresh_database: Callable[[str], Awaitable[str]]) -> str:
    url = await fresh_database("ledger")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    return url


@pytest.fixture(scope="module")
def ledger_settings() -> dict[str, Any]:
    """Settings a test module's ledger server takes beyond the defaults (override it)."""
    return {}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger(
    ledger_database: str, ledger_settings: dict[str, Any]
) -> AsyncIterator[service_pb2_grpc.LedgerServiceAsyncStub]:
    settings = LedgerSettings(
        **{
            "port": 0,
            "database_url": ledger_database,
            "checkpoint_interval_seconds": 0.1,
            "expiry_interval_seconds": 0.2,
            **ledger_settings,
        }
    )
    async with (
        running_server("ledger.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        # The generated stub is the async flavour on an aio channel; mypy cannot see the channel.
        yield cast(
            "service_pb2_grpc.LedgerServiceAsyncStub", service_pb2_grpc.LedgerServiceStub(channel)
        )

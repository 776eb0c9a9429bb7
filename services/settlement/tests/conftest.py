"""A real settlement service: migrated PostgreSQL database and gRPC server, per test module.

The server trusts the tests' operator key and ``settlement`` calls as a
``settlement-operator``, so tests call operator methods and the internal ones alike;
``settlement_target`` is for calling without a token (or with another)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio

from openloop.settlement.v1 import service_pb2_grpc
from openloop_runtime import migrations
from openloop_runtime.server import running_server
from openloop_settlement.app import MIGRATIONS_DIR, build
from openloop_settlement.config import SettlementSettings
from services.settlement.tests.settlement_helpers import OPERATOR_KEYS, operator_stub


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def settlement_database(fresh_database: Callable[[str], Awaitable[str]]) -> str:
    url = await fresh_database("settlement")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def settlement_target(settlement_database: str) -> AsyncIterator[str]:
    """Where the module's settlement server listens."""
    settings = SettlementSettings(
        port=0, database_url=settlement_database, operator_keys=OPERATOR_KEYS
    )
    async with running_server("settlement.openloop.dev", settings, build(settings)) as running:
        yield f"127.0.0.1:{running.port}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def settlement(
    settlement_target: str,
) -> AsyncIterator[service_pb2_grpc.SettlementServiceAsyncStub]:
    channel, stub = operator_stub(settlement_target)
    async with channel:
        yield stub

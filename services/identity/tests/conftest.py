"""The identity service on a real gRPC server and a real PostgreSQL database, per module.

The server trusts the tests' operator key, and ``Identity.stub`` calls as an operator, so
tests call operator methods and the gateway's alike; ``Identity.target`` is for calling
without a token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio

from openloop_identity.app import MIGRATIONS_DIR
from openloop_runtime import migrations
from services.identity.tests.identity_helpers import Identity, serving_identity


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def identity(
    fresh_database: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Identity]:
    url = await fresh_database("identity")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    async with serving_identity(url) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def lenient(
    fresh_database: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Identity]:
    """A second server, with require_payment_binding off (a migration window), where a
    request may omit its amount."""
    url = await fresh_database("identity_lenient")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    async with serving_identity(url, require_payment_binding=False) as served:
        yield served

"""The identity service on a real gRPC server and a real PostgreSQL database, per module.

The server trusts the tests' operator key, and ``Identity.stub`` calls as an operator, so
tests call operator methods and the gateway's alike; ``Identity.target`` is for calling
without a token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio
from sqlalchemy.ext.asyncio import create_async_engine

from openloop_identity.app import MIGRATIONS_DIR, build
from openloop_identity.config import IdentitySettings
from openloop_runtime import migrations
from openloop_runtime.server import running_server
from services.identity.tests.identity_helpers import (
    AUDIENCE,
    ISSUER,
    OPERATOR_KEYS,
    Identity,
    operator_stub,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def identity(
    fresh_database: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Identity]:
    url = await fresh_database("identity")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    settings = IdentitySettings(
        port=0,
        database_url=url,
        trusted_issuers={ISSUER.issuer: ISSUER.jwks},
        assertion_audience=AUDIENCE,
        operator_keys=OPERATOR_KEYS,
    )
    db = create_async_engine(url)
    async with running_server("identity.openloop.dev", settings, build(settings)) as running:
        target = f"127.0.0.1:{running.port}"
        channel, stub = operator_stub(target)
        async with channel:
            yield Identity(stub, db, target)
    await db.dispose()

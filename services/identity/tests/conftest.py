"""The identity service on a real gRPC server and a real PostgreSQL database, per module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest_asyncio
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.identity.v1 import service_pb2_grpc
from openloop_identity.app import MIGRATIONS_DIR, build
from openloop_identity.config import IdentitySettings
from openloop_runtime import migrations
from openloop_runtime.server import running_server
from services.identity.tests.identity_helpers import AUDIENCE, ISSUER, Identity


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
    )
    db = create_async_engine(url)
    async with (
        running_server("identity.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield Identity(service_pb2_grpc.IdentityServiceStub(channel), db)
    await db.dispose()

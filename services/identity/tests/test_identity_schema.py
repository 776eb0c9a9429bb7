"""The hand-written migration creates exactly the schema tables.py describes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from openloop_identity.app import MIGRATIONS_DIR
from openloop_identity.tables import metadata
from openloop_runtime import migrations


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, metadata))


async def test_migration_matches_tables(fresh_database: Callable[[str], Awaitable[str]]) -> None:
    url = await fresh_database("identity_schema")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []

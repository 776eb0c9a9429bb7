"""The hand-written migration creates exactly the schema tables.py describes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from openloop_gateway.app import MIGRATIONS_DIR
from openloop_gateway.tables import metadata
from openloop_runtime import migrations


async def test_migration_matches_tables(fresh_database: Callable[[str], Awaitable[str]]) -> None:
    url = await fresh_database("gateway_schema")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    assert await migrations.schema_drift(url, metadata) == []

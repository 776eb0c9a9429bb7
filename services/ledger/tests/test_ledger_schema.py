"""The hand-written migration builds exactly the schema tables.py declares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from openloop_ledger.config import LedgerSettings
from openloop_ledger.durability import UnsafeDatabaseError, require_durable_commits
from openloop_ledger.tables import metadata
from openloop_runtime import migrations
from openloop_runtime.db import create_engine


async def test_the_migration_matches_the_tables(ledger_database: str) -> None:
    assert await migrations.schema_drift(ledger_database, metadata) == []


def test_settings_come_from_the_ledger_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLOOP_LEDGER_PORT", raising=False)
    assert LedgerSettings().port == 50053
    monkeypatch.setenv("OPENLOOP_LEDGER_PORT", "6000")
    monkeypatch.setenv("OPENLOOP_SETTLEMENT_PORT", "7000")
    assert LedgerSettings().port == 6000


async def test_the_ledger_refuses_a_database_that_skips_durable_commits(
    fresh_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await fresh_database("nondurable")
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        database = url.rsplit("/", 1)[1]
        await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    finally:
        await conn.close()
    engine = create_engine(url)
    try:
        with pytest.raises(UnsafeDatabaseError, match="synchronous_commit is off"):
            await require_durable_commits(engine)
    finally:
        await engine.dispose()


async def test_the_test_database_commits_durably(ledger_database: str) -> None:
    engine = create_engine(ledger_database)
    try:
        await require_durable_commits(engine)
    finally:
        await engine.dispose()

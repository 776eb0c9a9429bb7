"""The hand-written migration builds exactly the schema tables.py declares."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from openloop_ledger.config import LedgerSettings
from openloop_ledger.tables import metadata


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_the_migration_matches_the_tables(ledger_database: str) -> None:
    engine = create_async_engine(ledger_database)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


def test_settings_come_from_the_ledger_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLOOP_LEDGER_PORT", raising=False)
    assert LedgerSettings().port == 50053
    monkeypatch.setenv("OPENLOOP_LEDGER_PORT", "6000")
    monkeypatch.setenv("OPENLOOP_SETTLEMENT_PORT", "7000")
    assert LedgerSettings().port == 6000

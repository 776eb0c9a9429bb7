"""The hand-written migration builds exactly the schema tables.py declares."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from openloop_settlement.config import SettlementSettings
from openloop_settlement.tables import metadata


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_the_migration_matches_the_tables(settlement_database: str) -> None:
    engine = create_async_engine(settlement_database)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


def test_settings_come_from_the_settlement_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLOOP_SETTLEMENT_PORT", raising=False)
    assert SettlementSettings().port == 50054
    monkeypatch.setenv("OPENLOOP_SETTLEMENT_PORT", "6000")
    monkeypatch.setenv("OPENLOOP_LEDGER_PORT", "7000")
    assert SettlementSettings().port == 6000

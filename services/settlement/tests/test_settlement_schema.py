"""The hand-written migration builds exactly the schema tables.py declares."""

from __future__ import annotations

import pytest

from openloop_runtime import migrations
from openloop_settlement.config import SettlementSettings
from openloop_settlement.tables import metadata


async def test_the_migration_matches_the_tables(settlement_database: str) -> None:
    assert await migrations.schema_drift(settlement_database, metadata) == []


def test_settings_come_from_the_settlement_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLOOP_SETTLEMENT_PORT", raising=False)
    assert SettlementSettings().port == 50054
    monkeypatch.setenv("OPENLOOP_SETTLEMENT_PORT", "6000")
    monkeypatch.setenv("OPENLOOP_LEDGER_PORT", "7000")
    assert SettlementSettings().port == 6000

"""The hand-written migration builds exactly the schema tables.py declares."""

from __future__ import annotations

import pytest

from openloop_ledger.config import LedgerSettings
from openloop_ledger.tables import metadata
from openloop_runtime import migrations


async def test_the_migration_matches_the_tables(ledger_database: str) -> None:
    assert await migrations.schema_drift(ledger_database, metadata) == []


def test_settings_come_from_the_ledger_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLOOP_LEDGER_PORT", raising=False)
    assert LedgerSettings().port == 50053
    monkeypatch.setenv("OPENLOOP_LEDGER_PORT", "6000")
    monkeypatch.setenv("OPENLOOP_SETTLEMENT_PORT", "7000")
    assert LedgerSettings().port == 6000

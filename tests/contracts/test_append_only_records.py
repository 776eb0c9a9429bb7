"""The tables whose rows are records refuse every change after their services' migrations.

Each service's migrations run on a fresh database; a real row is added to every append-only
table, and then UPDATE, DELETE and TRUNCATE must each fail with ``restrict_violation``
(SQLSTATE 23001) and leave the row as it was, while a new INSERT still works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import column, delete, select, table, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.sql.expression import ColumnClause

from openloop_identity.app import MIGRATIONS_DIR as IDENTITY_MIGRATIONS
from openloop_rules.app import MIGRATIONS_DIR as RULES_MIGRATIONS
from openloop_runtime import migrations
from openloop_settlement.app import MIGRATIONS_DIR as SETTLEMENT_MIGRATIONS

_RESTRICT_VIOLATION = "23001"


@dataclass(frozen=True)
class Record:
    table: str
    key: str
    """The row's key column, to read it back."""
    insert: str
    """Adds a row; ``:k`` is the key's value."""


_RULES = [
    Record(
        "programs",
        "version",
        "INSERT INTO programs (program_id, version, document, sha256)"
        " VALUES ('p', :k, 'doc', repeat('ab', 32))",
    ),
    Record(
        "rule_sets",
        "version",
        "INSERT INTO rule_sets (version, document, sha256, program_id, published_by,"
        " publish_reason) VALUES (:k, 'doc', repeat('ab', 32), 'p', 'operator:alice', 'why')",
    ),
    Record(
        "activations",
        "request_id",
        "INSERT INTO activations (version, activated_by, reason, program_id, effective_at,"
        " kind, request_id) VALUES ((SELECT min(version) FROM rule_sets), 'operator:alice',"
        " 'why', 'p', now(), 'ACTIVATE', :k)",
    ),
    Record(
        "audit_events",
        "reason",
        "INSERT INTO audit_events (actor, action, program_id, reason, details)"
        " VALUES ('operator:alice', 'PUBLISH', 'p', :k, '{}')",
    ),
]
_IDENTITY = [
    Record(
        "audit_events",
        "resource",
        "INSERT INTO audit_events (actor, role, action, resource, details)"
        " VALUES ('operator:alice', 'identity-operator', 'CREATE_PARTICIPANT', :k, '{}')",
    ),
]
_SETTLEMENT = [
    Record(
        "obligations",
        "transfer_id",
        "INSERT INTO obligations (transfer_id, debit_participant_id, credit_participant_id,"
        " amount, inter_participant, cycle_id)"
        " VALUES (:k, 'bank-a', 'bank-b', 100, true,"
        " (SELECT min(cycle_id) FROM settlement_cycles))",
    ),
]


@pytest.mark.parametrize(
    ("service", "migrations_dir", "records"),
    [
        pytest.param("rules", RULES_MIGRATIONS, _RULES, id="rules"),
        pytest.param("identity", IDENTITY_MIGRATIONS, _IDENTITY, id="identity"),
        pytest.param("settlement", SETTLEMENT_MIGRATIONS, _SETTLEMENT, id="settlement"),
    ],
)
async def test_records_are_append_only(
    fresh_database: Callable[[str], Awaitable[str]],
    service: str,
    migrations_dir: Path,
    records: list[Record],
) -> None:
    url = await fresh_database(f"{service}_append_only")
    await asyncio.to_thread(migrations.upgrade, migrations_dir, url)
    engine = create_async_engine(url)
    try:
        for record in records:
            async with engine.begin() as conn:
                await conn.execute(text(record.insert), {"k": "first"})
            rows = table(record.table, column(record.key))
            for change in (
                update(rows).values({record.key: "changed"}),
                delete(rows),
                text(f'TRUNCATE "{record.table}" CASCADE'),
            ):
                async with engine.connect() as conn:
                    with pytest.raises(DBAPIError) as refused:
                        await conn.execute(change)
                    await conn.rollback()
                assert getattr(refused.value.orig, "sqlstate", None) == _RESTRICT_VIOLATION
                assert f"{record.table} is append-only" in str(refused.value.orig)
            async with engine.begin() as conn:
                await conn.execute(text(record.insert), {"k": "second"})
                assert await _keys(conn, record) == ["first", "second"]
    finally:
        await engine.dispose()


async def _keys(conn: AsyncConnection, record: Record) -> list[str]:
    key: ColumnClause[str] = column(record.key)
    found = await conn.execute(select(key).select_from(table(record.table, key)).order_by(key))
    return [str(value) for value in found.scalars()]

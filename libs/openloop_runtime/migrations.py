"""Alembic migrations, one history per service, run programmatically.

Each service keeps ``migrations/`` (``env.py`` plus ``versions/``) inside its
package. ``env.py`` is a two-liner calling :func:`run_env`; the database URL comes
from the service's settings, never from an ini file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(script_location: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Safe to run on every start and from many replicas:
    Alembic takes its steps in one transaction and PostgreSQL's DDL is transactional."""
    command.upgrade(alembic_config(script_location, database_url), revision)


def _run_sync(connection: Connection, target_metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        # One migrator at a time even when many replicas start together.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7264891)")
        context.run_migrations()


async def _run_async(url: str, target_metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync, target_metadata)
    await engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's ``env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not configured")
    asyncio.run(_run_async(url, target_metadata))


async def schema_drift(database_url: str, target_metadata: MetaData) -> list[object]:
    """What differs between a migrated database and ``target_metadata`` (empty: nothing).

    Each service's tests migrate a fresh database and assert this is empty, so the
    hand-written migrations and ``tables.py`` cannot drift apart.
    """
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415 (tests only)
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), target_metadata))

    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(differences)
    finally:
        await engine.dispose()


_REFUSE_CHANGE = """
CREATE OR REPLACE FUNCTION openloop_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'rows of this table are only ever added; record a new row instead';
END
$$
"""


def make_append_only(*tables: str) -> None:
    """Inside a migration: refuse every UPDATE, DELETE and TRUNCATE of ``tables`` from now on.

    For the tables whose rows are records (audit trails, published documents, obligations):
    the service never changes them, and these triggers make sure nothing else does by
    mistake either (a hand-run fix, a bug in a later version). They raise
    ``restrict_violation`` (SQLSTATE 23001) naming the table and the operation, and roll
    the whole statement back. They stop accidents, not the database's owner, who can drop a
    trigger; tamper *evidence* is the ledger's Merkle log.
    """
    op.execute(_REFUSE_CHANGE)
    for table in tables:
        op.execute(
            f"CREATE TRIGGER {table}_refuse_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION openloop_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION openloop_refuse_change()"
        )


def drop_append_only(*tables: str) -> None:
    """Undo :func:`make_append_only` for ``tables`` (a migration's downgrade)."""
    for table in tables:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_refuse_change ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_refuse_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS openloop_refuse_change()")

"""The async SQLAlchemy engine each service uses for its own database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop_runtime.settings import ServiceSettings


@contextlib.asynccontextmanager
async def engine_for(
    settings: ServiceSettings, *, pre_ping: bool = True
) -> AsyncIterator[AsyncEngine]:
    """The service's engine for the life of the server, disposed when it stops."""
    engine = create_engine(
        settings.database_url, pool_size=settings.db_pool_size, pre_ping=pre_ping
    )
    try:
        yield engine
    finally:
        await engine.dispose()


def create_engine(database_url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """An asyncpg-backed engine; ``pool_pre_ping`` so a restarted database is survived.

    SQLAlchemy's ping on asyncpg costs three round trips per checkout (BEGIN, a query,
    ROLLBACK). A service that borrows raw asyncpg connections on its hot path can turn it
    off and check the connection itself (``openloop_ledger.pg.connection`` does).
    """
    if not database_url:
        raise ValueError("database_url is not set; set OPENLOOP_<SERVICE>_DATABASE_URL")
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )


NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}
"""Constraint names every service's schema follows, so migrations can name what they alter."""


def service_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)

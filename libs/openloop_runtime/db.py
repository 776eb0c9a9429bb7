"""The async SQLAlchemy engine each service uses for its own database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import MetaData, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from openloop_runtime.settings import ServiceSettings


@contextlib.asynccontextmanager
async def engine_for(settings: ServiceSettings) -> AsyncIterator[AsyncEngine]:
    """The service's engine for the life of the server, disposed when it stops."""
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg-backed engine whose pool never hands out a connection the server closed.

    SQLAlchemy's ``pool_pre_ping`` would check each connection at checkout with a query,
    and on asyncpg that costs three round trips (BEGIN, the query, ROLLBACK): more than
    most of our transactions. Instead the pool asks asyncpg whether the connection is
    still open, which costs nothing: when a database restarts it closes every connection,
    asyncpg sees each socket close, and the pool replaces such a connection with a new one
    (SQLAlchemy's documented use of ``DisconnectionError`` in a checkout event). A
    connection that dies during use fails that one call, which the error interceptor
    answers UNAVAILABLE, and SQLAlchemy invalidates it.
    """
    if not database_url:
        raise ValueError("database_url is not set; set OPENLOOP_<SERVICE>_DATABASE_URL")
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    driver = record.driver_connection
    if driver is None or driver.is_closed():
        # As a failed pre-ping does: a closed connection means the database went away, so
        # every connection pooled before now is replaced, this one at once.
        raise exc.InvalidatePoolError("the database closed this connection")


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

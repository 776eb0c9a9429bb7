"""The async SQLAlchemy engine each service uses for its own database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy import MetaData, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from openloop_runtime.interceptors import is_database_unavailable
from openloop_runtime.settings import ServiceSettings

DriverConnection = Any
"""An ``asyncpg.Connection`` (asyncpg ships no type information)."""


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


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[DriverConnection]:
    """An open asyncpg connection borrowed from the engine's pool for the block, for the
    few paths where SQLAlchemy's per-statement work is the cost (a ledger batch, a proof,
    the rules service's decision sample).

    It is checked out with ``AsyncEngine.raw_connection``: one hop into SQLAlchemy's
    synchronous pool instead of the three an ``AsyncConnection`` takes (connect, fetch the
    raw connection, close), about 110 µs of CPU less per checkout on the 2-core machine.
    The same pool and the same checkout check (see :func:`create_engine`): the pool never
    hands out a connection the server closed, and one that fails during the block because
    the database went away is discarded rather than returned to it. Statements outside a
    ``transaction()`` block commit on their own.
    """
    pooled = await engine.raw_connection()
    driver: DriverConnection = pooled.driver_connection
    try:
        yield driver
    except BaseException as error:
        if driver.is_closed() or is_database_unavailable(error):
            pooled.invalidate()
        if driver.is_closed() and isinstance(error, asyncpg.InterfaceError):
            # "connection is closed": the database went away, not a bad query.
            raise ConnectionError("the database closed the connection") from error
        raise
    finally:
        pooled.close()


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

"""Every service's pool survives a database that closed its connections (a restart, a
failover) without a ping per checkout: no call is handed a connection the server closed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from openloop_dev.postgres import terminate_connections
from openloop_runtime.db import create_engine


async def test_connections_the_server_closed_are_replaced_at_checkout(
    fresh_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await fresh_database("pool_replaces_closed")
    engine = create_engine(url, pool_size=2)
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
    try:
        async with engine.connect() as a, engine.connect() as b:
            before = {await conn.scalar(text("SELECT pg_backend_pid()")) for conn in (a, b)}
            drivers: list[Any] = [(await c.get_raw_connection()).driver_connection for c in (a, b)]
        assert await terminate_connections(url) == 2
        for _ in range(250):  # until the event loop has seen both sockets close
            if all(driver.is_closed() for driver in drivers):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("asyncpg never saw the server close its connections")

        for _ in range(4):  # both closed connections replaced, then the new ones reused
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT pg_backend_pid()")) not in before
        assert pings == []  # and never a round trip to ask whether a connection is alive
    finally:
        await engine.dispose()

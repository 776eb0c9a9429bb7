"""Connections the database closed are replaced, not used; one that dies in use is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from openloop_dev.postgres import terminate_connections
from openloop_ledger import pg
from openloop_runtime.db import create_engine


async def _wait_closed(conns: list[pg.Connection]) -> None:
    for _ in range(200):
        if all(conn.is_closed() for conn in conns):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("asyncpg never saw the server close its connections")


async def test_connections_the_server_closed_are_replaced_before_use(
    fresh_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await fresh_database("ledger_reconnect")
    engine = create_engine(url, pool_size=3)
    try:
        # Fill the pool with three connections, then have the server close all of them.
        async with (
            pg.connection(engine) as a,
            pg.connection(engine) as b,
            pg.connection(engine) as c,
        ):
            pids = {await conn.fetchval("SELECT pg_backend_pid()") for conn in (a, b, c)}
            held = [a, b, c]
        assert len(pids) == 3
        assert await terminate_connections(url) == 3
        await _wait_closed(held)

        async with pg.connection(engine) as conn:
            assert await conn.fetchval("SELECT 1") == 1
            assert await conn.fetchval("SELECT pg_backend_pid()") not in pids
    finally:
        await engine.dispose()


async def test_a_connection_that_dies_during_use_is_discarded(
    fresh_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await fresh_database("ledger_dies_in_use")
    engine = create_engine(url, pool_size=1)
    try:
        used: list[int] = []

        async def use_after_the_server_closed_it() -> None:
            async with pg.connection(engine) as conn:
                used.append(await conn.fetchval("SELECT pg_backend_pid()"))
                await terminate_connections(url)
                await _wait_closed([conn])
                await conn.fetchval("SELECT 1")

        with pytest.raises(ConnectionError, match="closed the connection"):
            await use_after_the_server_closed_it()
        async with pg.connection(engine) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != used[0]
    finally:
        await engine.dispose()

"""A database that cannot be reached is UNAVAILABLE; a query it refuses is still a defect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from openloop_dev.ports import free_port
from openloop_runtime.db import create_engine
from openloop_runtime.interceptors import is_database_unavailable


async def _failure(url: str, statement: str = "SELECT 1") -> BaseException:
    engine = create_engine(url)
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - which one is the question
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        return caught.value
    finally:
        await engine.dispose()


async def test_a_refused_connection_is_unavailable() -> None:
    closed = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/nothing"
    assert is_database_unavailable(await _failure(closed))


async def test_a_query_the_database_refuses_is_not_unavailable(
    fresh_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await fresh_database("errors")
    assert not is_database_unavailable(await _failure(url, "SELECT FROM nowhere"))
    assert not is_database_unavailable(ValueError("a bug"))

"""Fixtures shared by every test: one real PostgreSQL server per test session.

Each test module that needs a database gets a fresh one on that server
(``fresh_database``), so services' tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from openloop_dev.postgres import EmbeddedPostgres

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def fresh_database(
    postgres: EmbeddedPostgres,
) -> Callable[[str], Awaitable[str]]:
    """``await fresh_database("ledger")`` creates an empty database and returns its URL."""

    async def create(prefix: str) -> str:
        name = f"{prefix}_{next(_counter)}_{uuid.uuid4().hex[:8]}"
        return await postgres.create_database(name)

    return create

"""Fixtures shared by every test: one real PostgreSQL server per test session.

Each test module that needs a database gets a fresh one on that server
(``fresh_database``), so services' tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import settings

from openloop_dev.postgres import EmbeddedPostgres

# No per-example deadline: on a loaded two-core CI machine one example of a pure-logic
# property can take longer than Hypothesis's default 200 ms once (a GC pause, a starved
# core) and not on replay, which Hypothesis reports as a flaky failure. Slowness is measured
# by the benchmarks; the suite's own 300 s timeout still ends a test that hangs.
settings.register_profile("openloop", deadline=None)
settings.load_profile("openloop")

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> EmbeddedPostgres:
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "data")
    server.start()
    # Stopped when pytest unconfigures, not in this fixture's teardown: a session fixture's
    # teardown runs inside the last test's pytest-timeout (300 s), which would cut short
    # the ten minutes pg_ctl is given for the shutdown checkpoint.
    pytestconfig.add_cleanup(server.stop)
    return server


@pytest.fixture(scope="session")
async def fresh_database(
    postgres: EmbeddedPostgres,
) -> Callable[[str], Awaitable[str]]:
    """``await fresh_database("ledger")`` creates an empty database and returns its URL."""

    async def create(prefix: str) -> str:
        name = f"{prefix}_{next(_counter)}_{uuid.uuid4().hex[:8]}"
        return await postgres.create_database(name)

    return create

"""ListActivations, the rules' history of who activated what, never hides an activation
behind a reader: with two real transactions activating at once, the one that took the lower
activation id committing last, an auditor who pages through the history and later reads it
again from the top, down to the newest activation it has seen, has seen every one.
(Activation ids are taken at insert and rows appear at commit; the writers take their ids
in commit order, see openloop_runtime.commit_order.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from openloop.rules.v1 import service_pb2, service_pb2_grpc
from openloop_dev.postgres import done_or_waiting_for_lock
from openloop_rules.store import activations
from openloop_rules.store.activations import ActivationKind
from openloop_rules.tables import activations as activations_table
from openloop_runtime.timestamps import utc_now
from services.rules.tests.conftest import (
    Clock,
    FreshDatabase,
    Replica,
    migrated,
    operator_token,
    replica,
)
from services.rules.tests.rules_cases import DEFAULT_VERSION

PROGRAM = "digital-wallet"


@pytest_asyncio.fixture(loop_scope="session")
async def rules(fresh_database: FreshDatabase) -> AsyncIterator[tuple[Replica, AsyncEngine]]:
    url = await migrated(fresh_database)
    engine = create_async_engine(url)
    async with replica(url, Clock(utc_now())) as running:
        yield running, engine
    await engine.dispose()


class Auditor:
    """Reads the program's history newest first, a small page at a time, and remembers what
    it has seen; each read goes down to the first activation it saw before (or to the end)."""

    def __init__(self, stub: service_pb2_grpc.RulesServiceStub) -> None:
        self._stub = stub
        self.seen: list[str] = []

    async def read_down_to_the_newest_seen(self) -> None:
        known = set(self.seen)
        token = ""
        while True:
            page = await self._stub.ListActivations(
                service_pb2.ListActivationsRequest(
                    program=f"programs/{PROGRAM}", page_size=2, page_token=token
                ),
                metadata=operator_token(),
            )
            for activation in page.activations:
                if activation.name in known:
                    return
                self.seen.append(activation.name)
            token = page.next_page_token
            if not token:
                return


async def _activate(conn: AsyncConnection, reason: str) -> None:
    """An operator's activation as the governance writes it (far ahead: it never decides)."""
    await activations.insert(
        conn,
        program_id=PROGRAM,
        version=DEFAULT_VERSION,
        effective_at=utc_now() + timedelta(days=365),
        actor="operator:alice",
        reason=reason,
        kind=ActivationKind.ACTIVATE,
        request_id=None,
    )


async def _committed(engine: AsyncEngine, reason: str) -> None:
    async with engine.begin() as conn:
        await _activate(conn, reason)


async def test_an_activation_committed_after_a_later_numbered_one_is_not_skipped(
    rules: tuple[Replica, AsyncEngine],
) -> None:
    running, engine = rules
    for n in range(3):
        await _committed(engine, f"earlier {n}")
    auditor = Auditor(running.stub)
    url = engine.url.render_as_string(hide_password=False)
    async with engine.connect() as slow:
        # The slow activation takes the next id and has not committed yet.
        await _activate(slow, "slow")
        fast = asyncio.ensure_future(_committed(engine, "fast"))
        fast_committed = await done_or_waiting_for_lock(fast, url)
        # The auditor reads the whole history while the slow activation is in flight.
        await auditor.read_down_to_the_newest_seen()
        await slow.commit()
    await fast
    # Later it reads what is new since then.
    await auditor.read_down_to_the_newest_seen()

    async with engine.connect() as conn:
        ids = (
            await conn.scalars(
                select(activations_table.c.activation_id).where(
                    activations_table.c.program_id == PROGRAM
                )
            )
        ).all()
    every = {f"programs/{PROGRAM}/activations/{i}" for i in ids}
    assert len(every) == 6  # the seed's bootstrap, three earlier, the slow and the fast
    missed = sorted(every - set(auditor.seen))
    assert missed == [], f"the auditor never saw {missed} (fast committed first: {fast_committed})"
    assert len(auditor.seen) == len(set(auditor.seen)) == 6
    # Writers take activation ids in commit order: the fast activation waited for the slow one.
    assert not fast_committed

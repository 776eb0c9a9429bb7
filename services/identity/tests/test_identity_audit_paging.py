"""ListAuditEvents never hides an event behind a reader: with two real transactions writing
events at once, the one that took the lower event number committing last, an auditor who
pages through the trail and later reads it again from the top, down to the newest event it
has seen, has seen every event. (Event numbers are taken at insert and rows appear at
commit; the writers take their numbers in commit order, see openloop_runtime.commit_order.)"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop.identity.v1 import service_pb2, service_pb2_grpc
from openloop_dev.postgres import done_or_waiting_for_lock
from openloop_identity.store import audit
from openloop_identity.store.audit import AuditAction
from services.identity.tests.identity_helpers import (
    OPERATOR,
    Identity,
    audit_rows,
    new_participant_id,
)


class Auditor:
    """Reads one resource's trail newest first, a small page at a time, and remembers what it
    has seen; each read goes down to the first event it saw before (or to the end)."""

    def __init__(self, stub: service_pb2_grpc.IdentityServiceStub, resource: str) -> None:
        self._stub = stub
        self._resource = resource
        self.seen: list[str] = []

    async def read_down_to_the_newest_seen(self) -> None:
        known = set(self.seen)
        token = ""
        while True:
            page = await self._stub.ListAuditEvents(
                service_pb2.ListAuditEventsRequest(
                    resource=self._resource, page_size=2, page_token=token
                )
            )
            for event in page.audit_events:
                if event.name in known:
                    return
                self.seen.append(event.name)
            token = page.next_page_token
            if not token:
                return


async def _record(engine: AsyncEngine, resource: str, writer: str) -> None:
    async with engine.begin() as conn:
        await audit.record(
            conn, OPERATOR, AuditAction.SUSPEND_PARTICIPANT, resource, details={"writer": writer}
        )


async def test_an_event_committed_after_a_later_numbered_one_is_not_skipped(
    identity: Identity,
) -> None:
    resource = f"participants/{new_participant_id()}"
    for n in range(3):
        await _record(identity.db, resource, f"earlier-{n}")
    auditor = Auditor(identity.stub, resource)
    url = identity.db.url.render_as_string(hide_password=False)
    async with identity.db.connect() as slow:
        # The slow change takes the next event number and has not committed yet.
        await audit.record(
            slow, OPERATOR, AuditAction.SUSPEND_PARTICIPANT, resource, details={"writer": "slow"}
        )
        fast = asyncio.ensure_future(_record(identity.db, resource, "fast"))
        fast_committed = await done_or_waiting_for_lock(fast, url)
        # The auditor reads the whole trail while the slow change is in flight.
        await auditor.read_down_to_the_newest_seen()
        await slow.commit()
    await fast
    # Later it reads what is new since then.
    await auditor.read_down_to_the_newest_seen()

    every = [f"auditEvents/{row.event_id}" for row in await audit_rows(identity, resource)]
    assert len(every) == 5
    missed = sorted(set(every) - set(auditor.seen))
    assert missed == [], f"the auditor never saw {missed} (fast committed first: {fast_committed})"
    assert len(auditor.seen) == len(set(auditor.seen)) == 5
    # Writers take event numbers in commit order: the fast change waited for the slow one.
    assert not fast_committed

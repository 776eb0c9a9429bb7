"""The audit trail: which operator changed what, and who opened whose personal data.

Each event is written on the connection of the change it describes, inside that change's
transaction, so there is never a change without its event, nor an event for a change that
rolled back (the pattern of the rules service's ``store/audit.py``). Callers write one only
when something happened: a replay of a committed request, or a change to the state the
resource is already in, writes none.

Events name resources (``citizens/c...``, ``participants/...``) and count things; they never
hold personal data (citizen IDs, names, birth dates, addresses, phone numbers). ``details``
is for the few facts an auditor needs besides the resource, and callers keep it to names and
numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity.tables import audit_events
from openloop_runtime.commit_order import CommitOrder
from openloop_runtime.operators import Operator

_events = audit_events.c
_NUMBERING = CommitOrder("audit_events")
"""Events are numbered in commit order, so a page below an event number never gains one."""


class AuditAction(enum.StrEnum):
    CREATE_PARTICIPANT = "CREATE_PARTICIPANT"
    SUSPEND_PARTICIPANT = "SUSPEND_PARTICIPANT"
    REACTIVATE_PARTICIPANT = "REACTIVATE_PARTICIPANT"
    CLOSE_PARTICIPANT = "CLOSE_PARTICIPANT"
    CREATE_CREDENTIAL = "CREATE_CREDENTIAL"
    REVOKE_CREDENTIAL = "REVOKE_CREDENTIAL"
    ENROLL_CITIZEN = "ENROLL_CITIZEN"
    IMPORT_CITIZENS = "IMPORT_CITIZENS"
    """One event per imported batch that enrolled anyone; resource ``citizens``."""
    CREATE_MERCHANT = "CREATE_MERCHANT"
    EXPORT_CITIZEN_DATA = "EXPORT_CITIZEN_DATA"
    """A read, recorded because it opens a citizen's personal data (PDPA)."""
    ERASE_CITIZEN_DATA = "ERASE_CITIZEN_DATA"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event_id: int
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    acting_participant_id: str | None
    request_id: str | None
    details: Mapping[str, Any]


async def record(
    conn: AsyncConnection,
    operator: Operator,
    action: AuditAction,
    resource: str,
    *,
    acting_participant_id: str | None = None,
    request_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Add the event to ``conn``'s transaction: it commits or rolls back with the change.

    Make it the transaction's last write: from here to the commit, every other change that
    records an event waits for this one (its number must be visible before a later one is
    taken; see :mod:`openloop_runtime.commit_order`)."""
    await _NUMBERING.take_turn(conn)
    await conn.execute(
        audit_events.insert().values(
            actor=operator.actor,
            role=operator.role,
            action=action.value,
            resource=resource,
            acting_participant_id=acting_participant_id,
            request_id=request_id,
            details=dict(details or {}),
        )
    )


async def newest(
    engine: AsyncEngine,
    *,
    before: int | None,
    limit: int,
    resource: str | None = None,
    action: AuditAction | None = None,
) -> list[AuditEvent]:
    """Up to ``limit`` events, newest first, numbered below ``before`` (the keyset of a
    page). Events become visible in the order of their numbers (:func:`record`), so one
    added meanwhile is always numbered above every event listed: a page never shifts, and
    nothing ever appears below an event a reader has passed."""
    query = select(audit_events).order_by(_events.event_id.desc()).limit(limit)
    if before is not None:
        query = query.where(_events.event_id < before)
    if resource is not None:
        query = query.where(_events.resource == resource)
    if action is not None:
        query = query.where(_events.action == action.value)
    async with engine.connect() as conn:
        found = await conn.execute(query)
        return [
            AuditEvent(
                event_id=row.event_id,
                at=row.at,
                actor=row.actor,
                role=row.role,
                action=row.action,
                resource=row.resource,
                acting_participant_id=row.acting_participant_id,
                request_id=row.request_id,
                details=row.details,
            )
            for row in found
        ]

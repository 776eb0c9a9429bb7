"""ListAuditEvents: the auditors' read of the operators' audit trail, a page at a time.

Events go newest first, paged by keyset (AIP-158): a page token is the last event number of
the previous page together with the filters it was made for, so a token replayed with other
filters, or one we never issued, is INVALID_ARGUMENT naming ``page_token`` rather than a page
that silently skips events. The keyset is sound because events become visible in the order
of their numbers (``store/audit.py`` numbers them in commit order): nothing committed later
can land below a number a reader has passed. The token is opaque only so that clients do
not build it; it carries nothing secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from google.protobuf.struct_pb2 import Struct
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity.store import audit
from openloop_identity.store.audit import AuditAction, AuditEvent
from openloop_runtime.errors import DomainError, invalid_field
from openloop_runtime.names import format_name
from openloop_runtime.text import bounded_text
from openloop_runtime.timestamps import to_timestamp

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LENGTH = 1024
MAX_RESOURCE_LENGTH = 256
MAX_EVENT_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class AuditQuery:
    size: int
    before: int | None
    """The last event number the previous page returned; ``None`` for the first page."""
    resource: str | None
    action: AuditAction | None


def query_of(request: service_pb2.ListAuditEventsRequest) -> AuditQuery:
    if request.page_size < 0:
        raise invalid_field("page_size", "page_size must not be negative")
    size = min(request.page_size, MAX_PAGE_SIZE) if request.page_size else DEFAULT_PAGE_SIZE
    resource = bounded_text(request.resource, field="resource", max_length=MAX_RESOURCE_LENGTH)
    action: AuditAction | None = None
    if request.action:
        try:
            action = AuditAction(request.action)
        except ValueError:
            raise invalid_field("action", "action is not one of AuditEvent's actions") from None
    before = _decode(request.page_token, _scope(resource, action)) if request.page_token else None
    return AuditQuery(size, before, resource or None, action)


async def list_events(
    engine: AsyncEngine, request: service_pb2.ListAuditEventsRequest
) -> service_pb2.ListAuditEventsResponse:
    query = query_of(request)
    found = await audit.newest(
        engine,
        before=query.before,
        limit=query.size + 1,
        resource=query.resource,
        action=query.action,
    )
    shown, more = found[: query.size], len(found) > query.size
    scope = _scope(query.resource or "", query.action)
    return service_pb2.ListAuditEventsResponse(
        audit_events=[_event_message(event) for event in shown],
        next_page_token=_encode(shown[-1].event_id, scope) if more else "",
    )


def _event_message(event: AuditEvent) -> resources_pb2.AuditEvent:
    details = Struct()
    details.update(dict(event.details))
    return resources_pb2.AuditEvent(
        name=format_name("auditEvents", str(event.event_id)),
        event_time=to_timestamp(event.at),
        actor=event.actor,
        role=event.role,
        action=event.action,
        resource=event.resource,
        acting_participant=(
            format_name("participants", event.acting_participant_id)
            if event.acting_participant_id
            else ""
        ),
        request_id=event.request_id or "",
        details=details,
    )


def _scope(resource: str, action: AuditAction | None) -> list[str]:
    return [resource, action.value if action else ""]


def _encode(last_event_id: int, scope: list[str]) -> str:
    payload = json.dumps({"a": last_event_id, "s": scope}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode("ascii")


def _decode(token: str, scope: list[str]) -> int:
    if len(token) <= MAX_TOKEN_LENGTH:
        try:
            payload = json.loads(base64.b64decode(token, altchars=b"-_", validate=True))
        except (binascii.Error, ValueError, RecursionError):
            payload = None
        if isinstance(payload, dict) and payload.get("s") == scope:
            after = payload.get("a")
            if isinstance(after, int) and not isinstance(after, bool) and 0 < after <= MAX_EVENT_ID:
                return after
    raise _foreign_token()


def _foreign_token() -> DomainError:
    return invalid_field(
        "page_token", "page_token is not one this service returned for these filters"
    )

"""The audit trail: who did what to which rule set, when and why.

Written in the same transaction as the change it describes, so there is never a change
without its audit row, nor an audit row for a change that did not happen.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from openloop_rules.tables import audit_events


async def record(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    program_id: str,
    rule_set_version: str | None,
    reason: str,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        audit_events.insert().values(
            actor=actor,
            action=action,
            program_id=program_id,
            rule_set_version=rule_set_version,
            reason=reason,
            details=details or {},
        )
    )

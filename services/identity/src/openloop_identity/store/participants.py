"""Participants: created once under a client-chosen id, read on every enrolment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.model import (
    WALLET_HOSTING_ROLES,
    Capability,
    NewParticipant,
    Participant,
    ParticipantState,
)
from openloop_identity.store import audit, rows
from openloop_identity.store.audit import AuditAction
from openloop_identity.tables import participants
from openloop_runtime.names import format_name
from openloop_runtime.operators import Operator


async def _by_request_id(conn: AsyncConnection, request_id: str) -> Row[Any] | None:
    result = await conn.execute(select(participants).where(participants.c.request_id == request_id))
    return result.first()


def _replayed(row: Row[Any], new: NewParticipant) -> Participant:
    """The stored participant when ``new`` repeats the request that created it."""
    stored = rows.participant(row)
    if (stored.participant_id, stored.display_name, stored.role, stored.capabilities) != (
        new.participant_id,
        new.display_name,
        new.role,
        new.capabilities,
    ):
        raise errors.idempotency_key_reused(new.request_id)
    return stored


async def create_participant(
    engine: AsyncEngine, new: NewParticipant, operator: Operator
) -> Participant:
    async with engine.begin() as conn:
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        inserted = await conn.execute(
            insert(participants)
            .values(
                participant_id=new.participant_id,
                request_id=new.request_id,
                display_name=new.display_name,
                role=new.role.value,
                state=ParticipantState.ACTIVE.value,
                capabilities=sorted(c.value for c in new.capabilities),
            )
            .on_conflict_do_nothing()
            .returning(*participants.c)
        )
        row = inserted.first()
        if row is not None:
            await audit.record(
                conn,
                operator,
                AuditAction.CREATE_PARTICIPANT,
                format_name("participants", new.participant_id),
                request_id=new.request_id,
                details={"role": new.role.value},
            )
            return rows.participant(row)
        # A concurrent request won: either our own retry, or another request for this id.
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        raise errors.participant_already_exists(new.participant_id)


async def get_participant(engine: AsyncEngine, participant_id: str) -> Participant:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(participants).where(participants.c.participant_id == participant_id)
        )
        row = result.first()
    if row is None:
        raise errors.participant_not_found(participant_id)
    return rows.participant(row)


async def transition(
    engine: AsyncEngine,
    participant_id: str,
    *,
    to: ParticipantState,
    allowed_from: set[ParticipantState],
    operator: Operator,
    action: AuditAction,
) -> Participant:
    """Move the participant to ``to`` if it is in one of ``allowed_from`` (the row is locked
    while deciding, so concurrent changes apply one after the other), recording ``action``
    by ``operator`` when the state changes (a participant already in ``to`` records
    nothing: nothing happened)."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(participants)
                .where(participants.c.participant_id == participant_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise errors.participant_not_found(participant_id)
        current = ParticipantState(row.state)
        if current not in allowed_from:
            raise errors.participant_state_conflict(
                participant_id, current.value, f"it cannot become {to.value}"
            )
        if current is to:
            return rows.participant(row)
        updated = await conn.execute(
            update(participants)
            .where(participants.c.participant_id == participant_id)
            .values(state=to.value)
            .returning(*participants.c)
        )
        await audit.record(
            conn,
            operator,
            action,
            format_name("participants", participant_id),
            details={"from_state": current.value, "to_state": to.value},
        )
        return rows.participant(updated.one())


async def require_wallet_host(
    conn: AsyncConnection, participant_id: str, *, field: str, capability: Capability
) -> None:
    """Fail unless ``participant_id`` exists, is ACTIVE and hosts this kind of wallet: a
    payer bank hosts citizens, an acquirer merchants."""
    result = await conn.execute(
        select(participants.c.role, participants.c.state, participants.c.capabilities).where(
            participants.c.participant_id == participant_id
        )
    )
    row = result.first()
    if row is None:
        raise errors.participant_not_found(participant_id)
    if row.state != ParticipantState.ACTIVE.value:
        raise errors.participant_not_active(participant_id, row.state)
    if row.role not in WALLET_HOSTING_ROLES:
        raise errors.participant_cannot_host(participant_id, row.role, field=field)
    if capability.value not in row.capabilities:
        raise errors.participant_lacks_capability(participant_id, capability.value, field=field)

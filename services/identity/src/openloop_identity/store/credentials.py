"""Participants' certificates and assertion keys: added, listed and revoked, never changed."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.model import (
    CredentialKind,
    CredentialMaterial,
    NewCredential,
    ParticipantCredential,
    ParticipantState,
)
from openloop_identity.store import audit
from openloop_identity.store.audit import AuditAction
from openloop_identity.tables import participant_credentials, participants
from openloop_runtime.names import format_name
from openloop_runtime.operators import Operator

_table = participant_credentials


def _credential(row: Row[Any]) -> ParticipantCredential:
    return ParticipantCredential(
        credential_id=row.credential_id,
        participant_id=row.participant_id,
        material=CredentialMaterial(
            kind=CredentialKind(row.kind),
            certificate_sha256=row.certificate_sha256 or "",
            certificate_subject=row.certificate_subject or "",
            certificate_san_uri=row.certificate_san_uri or "",
            key_id=row.key_id or "",
            public_jwk=row.public_jwk or "",
        ),
        not_before=row.not_before,
        not_after=row.not_after,
        revoke_time=row.revoke_time,
        create_time=row.create_time,
    )


async def _by_request_id(conn: AsyncConnection, request_id: str) -> Row[Any] | None:
    return (await conn.execute(select(_table).where(_table.c.request_id == request_id))).first()


def _replayed(row: Row[Any], new: NewCredential) -> ParticipantCredential:
    stored = _credential(row)
    if (stored.participant_id, stored.material) != (new.participant_id, new.material):
        raise errors.idempotency_key_reused(new.request_id)
    return stored


def credential_name(participant_id: str, credential_id: str) -> str:
    return f"{format_name('participants', participant_id)}/credentials/{credential_id}"


async def create_credential(
    engine: AsyncEngine, new: NewCredential, operator: Operator
) -> ParticipantCredential:
    material = new.material
    async with engine.begin() as conn:
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        state = (
            await conn.execute(
                select(participants.c.state).where(
                    participants.c.participant_id == new.participant_id
                )
            )
        ).scalar_one_or_none()
        if state is None:
            raise errors.participant_not_found(new.participant_id)
        if state == ParticipantState.CLOSED.value:
            raise errors.participant_not_active(new.participant_id, state)
        certificate = material.kind is CredentialKind.CLIENT_CERTIFICATE
        inserted = await conn.execute(
            insert(_table)
            .values(
                credential_id="k" + secrets.token_hex(10),
                participant_id=new.participant_id,
                request_id=new.request_id,
                kind=material.kind.value,
                certificate_sha256=material.certificate_sha256 if certificate else None,
                certificate_subject=material.certificate_subject if certificate else None,
                certificate_san_uri=material.certificate_san_uri if certificate else None,
                key_id=None if certificate else material.key_id,
                public_jwk=None if certificate else material.public_jwk,
                not_before=new.not_before,
                not_after=new.not_after,
            )
            .on_conflict_do_nothing()
            .returning(*_table.c)
        )
        row = inserted.first()
        if row is not None:
            await audit.record(
                conn,
                operator,
                AuditAction.CREATE_CREDENTIAL,
                credential_name(new.participant_id, row.credential_id),
                request_id=new.request_id,
                details={"kind": material.kind.value},
            )
            return _credential(row)
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        raise errors.credential_already_exists(material.kind.value)


async def list_credentials(engine: AsyncEngine, participant_id: str) -> list[ParticipantCredential]:
    async with engine.connect() as conn:
        known = (
            await conn.execute(
                select(participants.c.participant_id).where(
                    participants.c.participant_id == participant_id
                )
            )
        ).first()
        if known is None:
            raise errors.participant_not_found(participant_id)
        result = await conn.execute(
            select(_table)
            .where(_table.c.participant_id == participant_id)
            .order_by(_table.c.create_time.desc(), _table.c.credential_id)
        )
        return [_credential(row) for row in result]


async def revoke_credential(
    engine: AsyncEngine,
    participant_id: str,
    credential_id: str,
    now: datetime,
    operator: Operator,
) -> ParticipantCredential:
    """Set the revocation time once; revoking again returns the credential unchanged (and
    records nothing)."""
    async with engine.begin() as conn:
        revoked = await conn.execute(
            update(_table)
            .where(
                _table.c.participant_id == participant_id,
                _table.c.credential_id == credential_id,
                _table.c.revoke_time.is_(None),
            )
            .values(revoke_time=now)
            .returning(_table.c.credential_id)
        )
        if revoked.first() is not None:
            await audit.record(
                conn,
                operator,
                AuditAction.REVOKE_CREDENTIAL,
                credential_name(participant_id, credential_id),
            )
        row = (
            await conn.execute(
                select(_table).where(
                    _table.c.participant_id == participant_id,
                    _table.c.credential_id == credential_id,
                )
            )
        ).first()
    if row is None:
        raise errors.credential_not_found(participant_id, credential_id)
    return _credential(row)

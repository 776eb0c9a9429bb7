"""Citizens, found by their opaque id or by the keyed token of their citizen ID.

Writes take the caller's connection: enrolment verifies the identity assertion, spends its
token and inserts the citizen in one transaction (:mod:`openloop_identity.enrolment`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.model import Alias, AliasKind, Citizen, NewCitizen, PartyKind
from openloop_identity.store import aliases, rows
from openloop_identity.tables import citizens


async def by_request_id(conn: AsyncConnection, request_id: str) -> Row[Any] | None:
    result = await conn.execute(select(citizens).where(citizens.c.request_id == request_id))
    return result.first()


def replayed(row: Row[Any], new: NewCitizen) -> Citizen:
    """The citizen a retried request enrolled; IDEMPOTENCY_KEY_REUSED if the retry differs
    (including a different token: a retry must resend the one that enrolled)."""
    if (
        row.citizen_token,
        row.home_district_code,
        row.hosting_participant_id,
        row.assertion_digest,
    ) != (
        new.citizen_token,
        new.home_district_code,
        new.hosting_participant_id,
        new.assertion_digest,
    ):
        raise errors.idempotency_key_reused(new.request_id)
    return rows.citizen(row)


async def insert_citizen(
    conn: AsyncConnection,
    citizen_id: str,
    new: NewCitizen,
    *,
    identity_assurance_level: str,
    personal_data: bytes,
    personal_data_kek: str,
) -> Citizen | None:
    """Insert the citizen and claim its citizen-ID alias; None if the request id or the
    citizen ID is already taken (the caller tells which)."""
    consent = new.guardian_consent
    inserted = await conn.execute(
        insert(citizens)
        .values(
            citizen_id=citizen_id,
            request_id=new.request_id,
            citizen_token=new.citizen_token,
            home_district_code=new.home_district_code,
            hosting_participant_id=new.hosting_participant_id,
            personal_data=personal_data,
            personal_data_kek=personal_data_kek,
            identity_assurance_level=identity_assurance_level,
            assertion_digest=new.assertion_digest,
            income_within_limit=new.eligibility.income_within_limit,
            deposits_within_limit=new.eligibility.deposits_within_limit,
            excluded=new.eligibility.excluded,
            earlier_phase_recipient=new.eligibility.earlier_phase_recipient,
            guardian_consent_reference=None if consent is None else consent.reference,
            guardian_consent_time=None if consent is None else consent.time,
        )
        .on_conflict_do_nothing()
        .returning(*citizens.c)
    )
    row = inserted.first()
    if row is None:
        return None
    citizen = rows.citizen(row)
    await aliases.claim(
        conn, Alias(AliasKind.CITIZEN_ID, new.citizen_token), PartyKind.CITIZEN, citizen_id
    )
    return citizen


async def get_citizen(engine: AsyncEngine, citizen_id: str) -> Citizen:
    async with engine.connect() as conn:
        result = await conn.execute(select(citizens).where(citizens.c.citizen_id == citizen_id))
        row = result.first()
    if row is None:
        raise errors.citizen_not_found(citizen_id)
    return rows.citizen(row)


async def lookup_citizen(engine: AsyncEngine, citizen_token: str) -> Citizen:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(citizens).where(citizens.c.citizen_token == citizen_token)
        )
        row = result.first()
    if row is None:
        raise errors.no_citizen_with_id()
    return rows.citizen(row)

"""Citizens, found by their opaque id or by the keyed token of their citizen ID."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.ids import new_citizen_id
from openloop_identity.domain.model import Alias, AliasKind, Citizen, NewCitizen, PartyKind
from openloop_identity.store import aliases, rows
from openloop_identity.store.participants import require_wallet_host
from openloop_identity.tables import citizens


async def _by_request_id(conn: AsyncConnection, request_id: str) -> Row[Any] | None:
    result = await conn.execute(select(citizens).where(citizens.c.request_id == request_id))
    return result.first()


def _replayed(row: Row[Any], new: NewCitizen) -> Citizen:
    if (row.citizen_token, row.home_district_code, row.hosting_participant_id) != (
        new.citizen_token,
        new.home_district_code,
        new.hosting_participant_id,
    ):
        raise errors.idempotency_key_reused(new.request_id)
    return rows.citizen(row)


async def enroll_citizen(engine: AsyncEngine, new: NewCitizen) -> Citizen:
    async with engine.begin() as conn:
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        await require_wallet_host(conn, new.hosting_participant_id, field="hosting_participant")
        inserted = await conn.execute(
            insert(citizens)
            .values(
                citizen_id=new_citizen_id(),
                request_id=new.request_id,
                citizen_token=new.citizen_token,
                home_district_code=new.home_district_code,
                hosting_participant_id=new.hosting_participant_id,
            )
            .on_conflict_do_nothing()
            .returning(*citizens.c)
        )
        row = inserted.first()
        if row is not None:
            citizen = rows.citizen(row)
            await aliases.claim(
                conn,
                Alias(AliasKind.CITIZEN_ID, new.citizen_token),
                PartyKind.CITIZEN,
                citizen.citizen_id,
            )
            return citizen
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        raise errors.citizen_already_enrolled()


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

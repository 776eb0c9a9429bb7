"""The alias directory: citizen-ID tokens, tax IDs and phone tokens, each naming one party.

Claims happen inside the transaction that creates the party, so a party and its aliases
appear together or not at all; the primary key (kind, key) makes a second claim on an
alias fail, whichever party tries. Resolving is one indexed read that also returns the
hosting participant.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.model import Alias, PartyKind, ResolvedParty
from openloop_identity.tables import aliases, citizens, merchants


async def claim(conn: AsyncConnection, alias: Alias, kind: PartyKind, party_id: str) -> None:
    """Point ``alias`` at the party, or fail with ALIAS_TAKEN if it names another one."""
    inserted = await conn.execute(
        insert(aliases)
        .values(
            alias_kind=alias.kind.value,
            alias_key=alias.key,
            party_kind=kind.value,
            party_id=party_id,
        )
        .on_conflict_do_nothing()
        .returning(aliases.c.party_id)
    )
    if inserted.first() is not None:
        return
    holder = await conn.execute(
        select(aliases.c.party_kind, aliases.c.party_id).where(
            aliases.c.alias_kind == alias.kind.value, aliases.c.alias_key == alias.key
        )
    )
    row = holder.one()
    if (row.party_kind, row.party_id) != (kind.value, party_id):
        raise errors.alias_taken(alias.kind)


async def resolve(engine: AsyncEngine, alias: Alias) -> ResolvedParty:
    query = (
        select(
            aliases.c.party_kind,
            aliases.c.party_id,
            func.coalesce(
                citizens.c.hosting_participant_id, merchants.c.hosting_participant_id
            ).label("host"),
        )
        .select_from(
            aliases.outerjoin(
                citizens,
                and_(
                    aliases.c.party_kind == "CITIZEN", citizens.c.citizen_id == aliases.c.party_id
                ),
            ).outerjoin(
                merchants,
                and_(
                    aliases.c.party_kind == "MERCHANT",
                    merchants.c.merchant_id == aliases.c.party_id,
                ),
            )
        )
        .where(aliases.c.alias_kind == alias.kind.value, aliases.c.alias_key == alias.key)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None or row.host is None:
        raise errors.alias_not_found(alias.kind)
    return ResolvedParty(PartyKind(row.party_kind), row.party_id, row.host)

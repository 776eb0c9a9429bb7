"""Programs and rule sets: stored once per version, never changed.

Storing a version that exists is accepted only with the very same content (a retried
publish); other content is refused, because past decisions name the version and must stay
explainable by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openloop_rules import errors
from openloop_rules.program import ProgramDocument, parse_program, sha256_of
from openloop_rules.tables import programs, rule_sets


@dataclass(frozen=True)
class StoredRuleSet:
    version: str
    document: str
    sha256: str
    program_id: str
    program_version: str | None
    published_by: str
    publish_reason: str
    created_at: datetime


_COLUMNS = (
    rule_sets.c.version,
    rule_sets.c.document,
    rule_sets.c.sha256,
    rule_sets.c.program_id,
    rule_sets.c.program_version,
    rule_sets.c.published_by,
    rule_sets.c.publish_reason,
    rule_sets.c.created_at,
)


def _stored(row: object) -> StoredRuleSet:
    stored = StoredRuleSet(*row)  # type: ignore[misc]
    if sha256_of(stored.document) != stored.sha256:
        raise ValueError(f"rule set {stored.version} does not match its stored sha256")
    return stored


async def store_program(conn: AsyncConnection, program: ProgramDocument, document: str) -> bool:
    """Store a program version; False when it was already stored with this content."""
    digest = sha256_of(document)
    inserted = await conn.execute(
        insert(programs)
        .values(program_id=program.id, version=program.version, document=document, sha256=digest)
        .on_conflict_do_nothing()
    )
    if inserted.rowcount:
        return True
    stored = await conn.scalar(
        select(programs.c.sha256).where(
            programs.c.program_id == program.id, programs.c.version == program.version
        )
    )
    if stored != digest:
        raise errors.version_exists(f"programs/{program.id} version {program.version}")
    return False


async def load_programs(conn: AsyncConnection) -> dict[tuple[str, str], ProgramDocument]:
    rows = await conn.execute(select(programs.c.document, programs.c.sha256))
    loaded: dict[tuple[str, str], ProgramDocument] = {}
    for document, digest in rows:
        if sha256_of(document) != digest:
            raise ValueError("a stored program does not match its sha256")
        program = parse_program(document)
        loaded[program.key] = program
    return loaded


async def known_programs(conn: AsyncConnection) -> set[str]:
    query = select(programs.c.program_id).union(select(rule_sets.c.program_id))
    return set((await conn.execute(query)).scalars())


async def store_rule_set(
    conn: AsyncConnection,
    *,
    version: str,
    document: str,
    program_id: str,
    program_version: str | None,
    published_by: str,
    reason: str,
) -> tuple[StoredRuleSet, bool]:
    """The stored rule set, and whether this call stored it."""
    digest = sha256_of(document)
    inserted = await conn.execute(
        insert(rule_sets)
        .values(
            version=version,
            document=document,
            sha256=digest,
            program_id=program_id,
            program_version=program_version,
            published_by=published_by,
            publish_reason=reason,
        )
        .on_conflict_do_nothing(index_elements=[rule_sets.c.version])
    )
    stored = await get_rule_set(conn, version)
    assert stored is not None
    if stored.sha256 != digest:
        raise errors.version_exists(f"ruleSets/{version}")
    return stored, bool(inserted.rowcount)


async def get_rule_set(conn: AsyncConnection, version: str) -> StoredRuleSet | None:
    row = (await conn.execute(select(*_COLUMNS).where(rule_sets.c.version == version))).first()
    return _stored(row) if row is not None else None


async def list_rule_sets(
    conn: AsyncConnection,
    *,
    program_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[StoredRuleSet]:
    """Newest first; ``after`` is the (created_at, version) of the last one already listed."""
    query = select(*_COLUMNS).order_by(rule_sets.c.created_at.desc(), rule_sets.c.version.desc())
    if program_id is not None:
        query = query.where(rule_sets.c.program_id == program_id)
    if after is not None:
        created_at, version = after
        query = query.where(
            or_(
                rule_sets.c.created_at < created_at,
                and_(rule_sets.c.created_at == created_at, rule_sets.c.version < version),
            )
        )
    rows = await conn.execute(query.limit(limit))
    return [_stored(row) for row in rows]

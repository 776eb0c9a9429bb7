"""Rule sets and activations in the rules database. Used at startup, never per payment."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_rules.ruleset import RuleSetError, sha256_of
from openloop_rules.shipped import ShippedRuleSet
from openloop_rules.tables import activations, rule_sets

_SEED_LOCK = 5_318_008_271
"""Advisory lock serialising the seeding of replicas that start together."""

BOOTSTRAP_ACTOR = "system:bootstrap"


@dataclass(frozen=True)
class StoredRuleSet:
    version: str
    document: str
    sha256: str


async def seed(engine: AsyncEngine, shipped: ShippedRuleSet) -> bool:
    """Store ``shipped`` if absent and activate it if nothing is active.

    Returns whether it was activated. A stored version whose text differs from
    the shipped one is refused: versions are immutable, so a changed document
    needs a new version.
    """
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEED_LOCK})
        await conn.execute(
            insert(rule_sets)
            .values(version=shipped.version, document=shipped.document, sha256=shipped.sha256)
            .on_conflict_do_nothing(index_elements=[rule_sets.c.version])
        )
        stored = await conn.scalar(
            select(rule_sets.c.sha256).where(rule_sets.c.version == shipped.version)
        )
        if stored != shipped.sha256:
            raise RuleSetError(
                f"rule set {shipped.version} is stored with different content; "
                "a changed rule set needs a new version"
            )
        if await conn.scalar(select(activations.c.activation_id).limit(1)) is not None:
            return False
        await conn.execute(
            activations.insert().values(
                version=shipped.version,
                activated_by=BOOTSTRAP_ACTOR,
                reason="default rule set activated on first start",
            )
        )
        return True


async def load_active(engine: AsyncEngine) -> StoredRuleSet | None:
    """The rule set named by the latest activation, checked against its digest."""
    query = (
        select(rule_sets.c.version, rule_sets.c.document, rule_sets.c.sha256)
        .join(activations, activations.c.version == rule_sets.c.version)
        .order_by(activations.c.activation_id.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    if sha256_of(row.document) != row.sha256:
        raise RuleSetError(f"rule set {row.version} does not match its stored sha256")
    return StoredRuleSet(version=row.version, document=row.document, sha256=row.sha256)

"""A fresh environment's first rule set: the shipped programs and default rule set are
stored, and the default activated when its program has no activation yet.

An environment that already has activations keeps them: a new default shipped with a new
release is stored, ready for an operator to activate, never switched on behind their back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_rules.ruleset import parse_rule_set
from openloop_rules.shipped import ShippedRuleSet, shipped_programs
from openloop_rules.store import activations, audit, catalog
from openloop_rules.store.activations import ActivationKind
from openloop_rules.tables import activations as activations_table

_SEED_LOCK = 5_318_008_271
"""Advisory lock serialising the seeding of replicas that start together."""

BOOTSTRAP_ACTOR = "system:bootstrap"


async def seed(engine: AsyncEngine, shipped: ShippedRuleSet, now: datetime) -> bool:
    """Store the shipped programs and ``shipped``; activate it if its program has nothing
    active. Returns whether it was activated."""
    document = parse_rule_set(shipped.document)
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEED_LOCK})
        for program in shipped_programs().values():
            await catalog.store_program(conn, program.program, program.document)
        _, stored = await catalog.store_rule_set(
            conn,
            version=shipped.version,
            document=shipped.document,
            program_id=document.program,
            program_version=document.program_version,
            published_by=BOOTSTRAP_ACTOR,
            reason="shipped default rule set",
        )
        if stored:
            await audit.record(
                conn,
                actor=BOOTSTRAP_ACTOR,
                action="PUBLISH",
                program_id=document.program,
                rule_set_version=shipped.version,
                reason="shipped default rule set",
            )
        existing = await conn.scalar(
            select(activations_table.c.activation_id)
            .where(activations_table.c.program_id == document.program)
            .limit(1)
        )
        if existing is not None:
            return False
        reason = "default rule set activated on first start"
        await activations.insert(
            conn,
            program_id=document.program,
            version=shipped.version,
            effective_at=now,
            actor=BOOTSTRAP_ACTOR,
            reason=reason,
            kind=ActivationKind.BOOTSTRAP,
            request_id=None,
        )
        await audit.record(
            conn,
            actor=BOOTSTRAP_ACTOR,
            action="ACTIVATE",
            program_id=document.program,
            rule_set_version=shipped.version,
            reason=reason,
        )
        return True

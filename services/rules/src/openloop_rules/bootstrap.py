"""Startup: make sure a fresh environment has a rule set, then load the active one."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_rules import store
from openloop_rules.config import RulesSettings
from openloop_rules.evaluator import CompiledRuleSet
from openloop_rules.shipped import shipped_rule_set

_log = logging.getLogger(__name__)


async def load_rule_set(engine: AsyncEngine, settings: RulesSettings) -> CompiledRuleSet | None:
    """The compiled active rule set, or None when nothing is active (every payment denied).

    An active rule set that does not compile stops the service from starting:
    better no replica ready than replicas deciding with a broken rule set.
    """
    if settings.seed_default_rule_set:
        shipped = shipped_rule_set(settings.default_rule_set_version)
        if await store.seed(engine, shipped):
            _log.info("default rule set activated", extra={"rule_set_version": shipped.version})
    stored = await store.load_active(engine)
    if stored is None:
        _log.warning("no rule set is active; every payment will be denied")
        return None
    compiled = CompiledRuleSet.from_text(stored.document)
    _log.info(
        "rule set loaded",
        extra={"rule_set_version": compiled.version, "sha256": stored.sha256},
    )
    return compiled

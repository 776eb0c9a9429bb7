"""Wires the rules service: engine, startup seeding and loading, servicer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.rules.v1 import service_pb2, service_pb2_grpc
from openloop_rules.bootstrap import load_rule_set
from openloop_rules.config import RulesSettings
from openloop_rules.registry import ActiveRuleSet
from openloop_rules.servicer import RulesServicer
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build(settings: RulesSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        async with engine_for(settings) as engine:
            active = ActiveRuleSet(await load_rule_set(engine, settings))
            servicer = RulesServicer(active)
            yield [Registration.of(service_pb2, service_pb2_grpc, "RulesService", servicer)]

    return factory

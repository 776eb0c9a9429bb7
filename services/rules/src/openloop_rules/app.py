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
from openloop_runtime.db import create_engine
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build(settings: RulesSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        try:
            active = ActiveRuleSet(await load_rule_set(engine, settings))
            yield [
                Registration(
                    add_to_server=service_pb2_grpc.add_RulesServiceServicer_to_server,
                    servicer=RulesServicer(active),
                    full_name=service_pb2.DESCRIPTOR.services_by_name["RulesService"].full_name,
                )
            ]
        finally:
            await engine.dispose()

    return factory

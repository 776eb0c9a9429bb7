"""Wires the rules service: engine, seeding, the activation schedule and its poller, the
decision recorder, operator verification and the servicer."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from openloop.rules.v1 import service_pb2, service_pb2_grpc
from openloop_rules import operators
from openloop_rules.config import RulesSettings
from openloop_rules.governance import Governance
from openloop_rules.recorder import DecisionRecorder
from openloop_rules.schedule import RuleSchedule, ScheduleLoader
from openloop_rules.servicer import RulesServicer
from openloop_rules.shipped import shipped_rule_set
from openloop_rules.simulation import Simulation
from openloop_rules.store.seed import seed
from openloop_runtime.background import background
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory
from openloop_runtime.timestamps import utc_now

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_log = logging.getLogger(__name__)


def build(settings: RulesSettings, clock: Callable[[], datetime] = utc_now) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        if not settings.operator_keys:
            _log.warning(
                "no operator key is trusted: set OPENLOOP_RULES_OPERATOR_KEYS or rule sets "
                "cannot be published, activated or rolled back"
            )
        async with engine_for(settings) as engine:
            if settings.seed_default_rule_set:
                shipped = shipped_rule_set(settings.default_rule_set_version)
                if await seed(engine, shipped, clock()):
                    _log.info("default rule set activated", extra={"version": shipped.version})
            schedule = RuleSchedule()
            loader = ScheduleLoader(engine, schedule)
            await loader.refresh(strict=True)
            if schedule.in_effect(settings.default_program, clock()) is None:
                _log.warning("no rule set is active; every decision will be a deny")
            recorder = DecisionRecorder(settings.record_capacity, settings.record_keep)
            governance = Governance(
                engine,
                loader,
                margin=timedelta(seconds=settings.activation_margin_seconds),
                clock=clock,
            )
            servicer = RulesServicer(
                engine=engine,
                schedule=schedule,
                recorder=recorder,
                governance=governance,
                simulation=Simulation(engine, schedule, clock=clock, max_cases=settings.max_batch),
                operators=operators.verifier(
                    settings.operator_keys, audience=settings.operator_audience, clock=clock
                ),
                default_program=settings.default_program,
                max_batch=settings.max_batch,
                clock=clock,
            )
            # Compiled rule sets, protos and modules live as long as the process: keep them
            # out of the collector's full passes, which would otherwise stall decisions.
            gc.collect()
            gc.freeze()
            async with (
                background(loader.run(settings.schedule_poll_seconds), "rules-schedule-poll"),
                background(
                    recorder.run(engine, settings.record_interval_seconds), "rules-recorder"
                ),
            ):
                yield [Registration.of(service_pb2, service_pb2_grpc, "RulesService", servicer)]
            await recorder.flush(engine)

    return factory

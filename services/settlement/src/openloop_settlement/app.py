"""Wires settlement: its engine, stores, servicer and cut-off scheduler, owned for the
server's lifetime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.background import background
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory
from openloop_settlement import access
from openloop_settlement.config import SettlementSettings
from openloop_settlement.cutoff_scheduler import CutoffScheduler
from openloop_settlement.cutoffs import CutoffSchedule
from openloop_settlement.cycles import CycleStore
from openloop_settlement.reports import ReportStore
from openloop_settlement.servicer import SettlementServicer
from openloop_settlement.store import SettlementStore

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_log = logging.getLogger(__name__)


def build(settings: SettlementSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        if not settings.operator_keys:
            # Started all the same, like rules and identity: recording transfers (every
            # payment) must not wait for an operator key to be configured.
            _log.warning(
                "no operator key is trusted: set OPENLOOP_SETTLEMENT_OPERATOR_KEYS or no "
                "settlement cycle can be closed or settled, and no report read"
            )
        schedule = settings.cutoff_schedule()
        _log_schedule(schedule)
        async with engine_for(settings) as engine, contextlib.AsyncExitStack() as stack:
            cycles = CycleStore(engine)
            servicer = SettlementServicer(
                SettlementStore(engine),
                cycles,
                ReportStore(engine),
                operators=access.verifier(
                    settings.operator_keys, audience=settings.operator_audience
                ),
            )
            if schedule:
                scheduler = CutoffScheduler(cycles, schedule)
                await stack.enter_async_context(
                    background(scheduler.run(), "settlement-cutoff-scheduler")
                )
            yield [Registration.of(service_pb2, service_pb2_grpc, "SettlementService", servicer)]

    return factory


def _log_schedule(schedule: CutoffSchedule) -> None:
    if not schedule:
        _log.info(
            "no cut-off is scheduled: settlement cycles close only when an operator closes "
            "them (set OPENLOOP_SETTLEMENT_CUTOFF_TIMES to close them on schedule)"
        )
        return
    _log.info(
        "settlement cycles close at scheduled cut-offs",
        extra={
            "cutoff_times": [f"{t:%H:%M}" for t in schedule.times],
            "cutoff_timezone": schedule.zone.key,
        },
    )

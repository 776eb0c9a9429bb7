"""Wires settlement: its engine, store and servicer, owned for the server's lifetime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory
from openloop_settlement.config import SettlementSettings
from openloop_settlement.cycles import CycleStore
from openloop_settlement.reports import ReportStore
from openloop_settlement.servicer import SettlementServicer
from openloop_settlement.store import SettlementStore

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build(settings: SettlementSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        async with engine_for(settings) as engine:
            servicer = SettlementServicer(
                SettlementStore(engine), CycleStore(engine), ReportStore(engine)
            )
            yield [Registration.of(service_pb2, service_pb2_grpc, "SettlementService", servicer)]

    return factory

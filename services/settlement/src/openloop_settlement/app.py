"""Wires settlement: its engine, store and servicer, owned for the server's lifetime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.db import create_engine
from openloop_runtime.server import Registration, ServiceFactory
from openloop_settlement.config import SettlementSettings
from openloop_settlement.servicer import SettlementServicer
from openloop_settlement.store import SettlementStore

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build(settings: SettlementSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        try:
            yield [
                Registration(
                    add_to_server=service_pb2_grpc.add_SettlementServiceServicer_to_server,
                    servicer=SettlementServicer(SettlementStore(engine)),
                    full_name=service_pb2.DESCRIPTOR.services_by_name[
                        "SettlementService"
                    ].full_name,
                )
            ]
        finally:
            await engine.dispose()

    return factory

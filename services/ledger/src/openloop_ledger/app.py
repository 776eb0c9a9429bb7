"""Wires the ledger: its engine, store and servicer, owned for the server's lifetime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.ledger.v1 import service_pb2, service_pb2_grpc
from openloop_ledger.config import LedgerSettings
from openloop_ledger.servicer import LedgerServicer
from openloop_ledger.store import LedgerStore
from openloop_runtime.db import create_engine
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build(settings: LedgerSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        try:
            yield [
                Registration(
                    add_to_server=service_pb2_grpc.add_LedgerServiceServicer_to_server,
                    servicer=LedgerServicer(LedgerStore(engine)),
                    full_name=service_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name,
                )
            ]
        finally:
            await engine.dispose()

    return factory

"""Wires the ledger: its engine, store and servicer, owned for the server's lifetime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.ledger.v1 import service_pb2, service_pb2_grpc
from openloop_ledger.config import LedgerSettings
from openloop_ledger.servicer import LedgerServicer
from openloop_ledger.store import LedgerStore
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build(settings: LedgerSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        async with engine_for(settings) as engine:
            servicer = LedgerServicer(LedgerStore(engine))
            yield [Registration.of(service_pb2, service_pb2_grpc, "LedgerService", servicer)]

    return factory

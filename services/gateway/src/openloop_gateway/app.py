"""Wiring of the gateway: database, upstream channels, servicer, reconciler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

from openloop.gateway.v1 import service_pb2, service_pb2_grpc
from openloop_gateway.config import GatewaySettings
from openloop_gateway.payments import PaymentFlow
from openloop_gateway.reconciler import run_reconciler
from openloop_gateway.servicer import GatewayServicer
from openloop_gateway.store import PaymentStore
from openloop_gateway.upstreams import connect_upstreams
from openloop_runtime.db import create_engine
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build(settings: GatewaySettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        try:
            async with connect_upstreams(settings) as upstreams:
                store = PaymentStore(engine)
                flow = PaymentFlow(store, upstreams)
                reconciler = asyncio.create_task(
                    run_reconciler(
                        store,
                        flow,
                        interval=settings.reconcile_interval_seconds,
                        older_than=timedelta(seconds=settings.reconcile_after_seconds),
                    )
                )
                try:
                    yield [
                        Registration(
                            service_pb2_grpc.add_GatewayServiceServicer_to_server,
                            GatewayServicer(
                                flow, store, upstreams, settings.participant_uri_prefix
                            ),
                            service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,
                        )
                    ]
                finally:
                    reconciler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reconciler
        finally:
            await engine.dispose()

    return factory

"""Wiring of the gateway: database, upstream channels, servicer, reconciler."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

from openloop.gateway.v1 import service_pb2, service_pb2_grpc
from openloop_gateway.certificates import RegisteredCertificates
from openloop_gateway.config import GatewaySettings
from openloop_gateway.payments import PaymentFlow
from openloop_gateway.reconciler import Reconcilable, run_reconciler
from openloop_gateway.servicer import GatewayServicer
from openloop_gateway.store import PaymentStore
from openloop_gateway.upstreams import connect_upstreams
from openloop_gateway.wallet_move_store import MoveStore
from openloop_gateway.wallet_moves import WalletMoveFlow
from openloop_runtime.background import background
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_log = logging.getLogger(__name__)


def build(settings: GatewaySettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        if not settings.require_registered_client_certificate:
            _log.warning(
                "client certificates are not checked against the registered ones: a revoked "
                "certificate still opens the API while the edge's CA trusts it"
            )
        async with engine_for(settings) as engine, connect_upstreams(settings) as upstreams:
            store = PaymentStore(engine)
            flow = PaymentFlow(store, upstreams)
            move_store = MoveStore(engine)
            moves = WalletMoveFlow(
                move_store,
                upstreams,
                abandon_unbegun_after=timedelta(
                    seconds=settings.abandon_unbegun_move_after_seconds
                ),
            )
            reconciler = run_reconciler(
                Reconcilable(store, flow, move_store, moves),
                interval=settings.reconcile_interval_seconds,
                older_than=timedelta(seconds=settings.reconcile_after_seconds),
            )
            servicer = GatewayServicer(
                flow,
                store,
                upstreams,
                settings.participant_uri_prefix,
                moves=moves,
                move_store=move_store,
                certificates=RegisteredCertificates(
                    upstreams.participant_credentials,
                    cache_seconds=settings.certificate_cache_seconds,
                )
                if settings.require_registered_client_certificate
                else None,
            )
            async with background(reconciler, "gateway-reconciler"):
                yield [Registration.of(service_pb2, service_pb2_grpc, "GatewayService", servicer)]

    return factory

"""Wires the ledger: engine, store, batcher, sealer, expirer and servicer, owned for the
server's lifetime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.ledger.v1 import service_pb2, service_pb2_grpc
from openloop_ledger.batcher import Batcher
from openloop_ledger.config import LedgerSettings
from openloop_ledger.durability import require_durable_commits
from openloop_ledger.expirer import Expirer
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.log import LogReader
from openloop_ledger.sealer import Sealer
from openloop_ledger.servicer import LedgerServicer
from openloop_ledger.store import LedgerStore
from openloop_ledger.writes import BatchWriter
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_log = logging.getLogger(__name__)


def build(settings: LedgerSettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        if settings.uses_development_keys:
            _log.warning(
                "the ledger runs with a development leaf or checkpoint key: set "
                "OPENLOOP_LEDGER_LEAF_KEY and OPENLOOP_LEDGER_LOG_SIGNING_KEY in a deployment"
            )
        leaf_key = settings.leaf_key.get_secret_value().encode()
        encoder = LeafEncoder(leaf_key)
        signers = settings.checkpoint_signers()
        async with engine_for(settings) as engine:
            await require_durable_commits(engine)
            batcher = Batcher(
                BatchWriter(engine),
                max_events=settings.batch_max_events,
                pipeline_min_events=settings.batch_pipeline_min_events,
            )
            sealer = Sealer(
                engine,
                encoder,
                signers,
                batcher.committed,
                interval=settings.checkpoint_interval_seconds,
            )
            expirer = Expirer(engine, batcher, interval=settings.expiry_interval_seconds)
            servicer = LedgerServicer(
                LedgerStore(engine, leaf_key), batcher, LogReader(engine, encoder, signers[0].name)
            )
            async with batcher.running(), sealer.running(), expirer.running():
                yield [Registration.of(service_pb2, service_pb2_grpc, "LedgerService", servicer)]

    return factory

"""Wires the ledger: engine, store, batcher, sealer, expirer and servicer, owned for the
server's lifetime; and the sealer alone, for ``python -m openloop_ledger seal``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

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
        _warn_of_development_keys(settings, signs=settings.sealer_in_process)
        leaf_key = settings.leaf_key.get_secret_value().encode()
        encoder = LeafEncoder(leaf_key)
        async with engine_for(settings) as engine:
            await require_durable_commits(engine)
            batcher = Batcher(
                BatchWriter(engine),
                max_events=settings.batch_max_events,
                pipeline_min_events=settings.batch_pipeline_min_events,
            )
            expirer = Expirer(engine, batcher, interval=settings.expiry_interval_seconds)
            servicer = LedgerServicer(
                LedgerStore(engine, leaf_key),
                batcher,
                LogReader(engine, encoder),
            )
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(batcher.running())
                if settings.sealer_in_process:
                    sealer = _sealer(settings, engine, encoder, batcher.committed)
                    await stack.enter_async_context(sealer.running())
                await stack.enter_async_context(expirer.running())
                yield [
                    Registration.of(
                        service_pb2,
                        service_pb2_grpc,
                        "LedgerService",
                        servicer,
                        drain=servicer.end_idle_streams,
                    )
                ]

    return factory


def build_sealer(settings: LedgerSettings) -> ServiceFactory:
    """The sealer alone: it serves no API, only the health service every process has."""

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        _warn_of_development_keys(settings, signs=True)
        encoder = LeafEncoder(settings.leaf_key.get_secret_value().encode())
        async with (
            engine_for(settings) as engine,
            _sealer(settings, engine, encoder, None).running(),
        ):
            yield []

    return factory


def _sealer(
    settings: LedgerSettings,
    engine: AsyncEngine,
    encoder: LeafEncoder,
    committed: asyncio.Condition | None,
) -> Sealer:
    return Sealer(
        engine,
        encoder,
        settings.checkpoint_signers(),
        committed,
        interval=settings.checkpoint_interval_seconds,
        timeout=settings.sealer_timeout_seconds,
    )


def _warn_of_development_keys(settings: LedgerSettings, *, signs: bool) -> None:
    if settings.uses_development_keys(signs=signs):
        _log.warning(
            "the ledger runs with a development leaf or checkpoint key: set "
            "OPENLOOP_LEDGER_LEAF_KEY and, where checkpoints are signed, "
            "OPENLOOP_LEDGER_LOG_SIGNING_KEY in a deployment"
        )

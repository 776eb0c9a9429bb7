"""Wires the identity service: engine, citizen-ID tokenizer and servicer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.identity.v1 import service_pb2, service_pb2_grpc
from openloop_identity.config import IdentitySettings
from openloop_identity.domain.districts import load_districts
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.servicer import IdentityServicer
from openloop_runtime.db import engine_for
from openloop_runtime.server import Registration, ServiceFactory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_log = logging.getLogger(__name__)


def build(settings: IdentitySettings) -> ServiceFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Sequence[Registration]]:
        if settings.uses_development_hmac_key:
            _log.warning(
                "citizen IDs are tokenised with the public development key; "
                "set OPENLOOP_IDENTITY_CITIZEN_ID_HMAC_KEY outside development"
            )
        async with engine_for(settings) as engine:
            servicer = IdentityServicer(
                engine, CitizenIdTokenizer(settings.citizen_id_hmac_key), load_districts()
            )
            yield [Registration.of(service_pb2, service_pb2_grpc, "IdentityService", servicer)]

    return factory

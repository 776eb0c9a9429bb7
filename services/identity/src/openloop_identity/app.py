"""Wires the identity service: engine, citizen-ID tokenizer and servicer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from openloop.identity.v1 import service_pb2, service_pb2_grpc
from openloop_identity import access
from openloop_identity.assertions import AssertionVerifier, CallerSuppliedGuard
from openloop_identity.bulk import CitizenImport
from openloop_identity.config import IdentitySettings
from openloop_identity.domain.assurance import AssurancePolicy
from openloop_identity.domain.districts import load_districts
from openloop_identity.enrolment import Enrolment
from openloop_identity.lifecycle import ParticipantLifecycle
from openloop_identity.payments import PaymentAuthorizer, PaymentVerification
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.positions import PositionCheck, SettlementPositions
from openloop_identity.privacy import Privacy
from openloop_identity.protection import KeyRing
from openloop_identity.servicer import IdentityServicer
from openloop_identity.store import replays
from openloop_identity.wallet_moves import WalletMoves
from openloop_runtime.background import background
from openloop_runtime.clients import open_channel
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
        if settings.uses_development_pii_keyring:
            _log.warning(
                "personal data is sealed under the public development key; "
                "set OPENLOOP_IDENTITY_PII_KEYRING outside development"
            )
        if not settings.operator_keys:
            _log.warning(
                "no operator key is trusted: set OPENLOOP_IDENTITY_OPERATOR_KEYS or no "
                "participant, credential, citizen or merchant can be administered"
            )
        tokenizer = CitizenIdTokenizer(settings.citizen_id_hmac_key)
        async with engine_for(settings) as engine, _positions(settings) as positions:
            keyring = KeyRing.parse(settings.pii_keyring)
            verifier = _verifier(settings)
            enrolment = Enrolment(engine, verifier=verifier, tokenizer=tokenizer, keyring=keyring)
            privacy = Privacy(engine, keyring)
            policy = AssurancePolicy.from_config(settings.assurance_policy)
            payments = PaymentVerification(
                engine,
                engine.execution_options(isolation_level="AUTOCOMMIT"),
                tokenizer=tokenizer,
                keyring=keyring,
                authorizer=PaymentAuthorizer(
                    engine,
                    audience=settings.assertion_audience,
                    policy=policy,
                    identity_providers=settings.trusted_issuers,
                ),
                require_authorization=settings.require_payer_authorization,
                require_binding=settings.require_payment_binding,
            )
            districts = load_districts()
            imports = CitizenImport(
                engine, tokenizer=tokenizer, districts=districts, keyring=keyring
            )
            servicer = IdentityServicer(
                engine,
                tokenizer=tokenizer,
                districts=districts,
                enrolment=enrolment,
                lifecycle=ParticipantLifecycle(engine, positions),
                participant_uri_prefix=settings.participant_uri_prefix,
                privacy=privacy,
                payments=payments,
                imports=imports,
                wallet_moves=WalletMoves(engine, verifier=verifier, tokenizer=tokenizer),
                operators=access.verifier(
                    settings.operator_keys, audience=settings.operator_audience
                ),
            )
            rewrap = privacy.run(settings.pii_rewrap_interval_seconds)
            pruning = replays.prune_forever(engine, settings.assertion_prune_interval_seconds)
            async with (
                background(rewrap, "identity-pii-rewrap"),
                background(pruning, "identity-replay-pruning"),
            ):
                yield [Registration.of(service_pb2, service_pb2_grpc, "IdentityService", servicer)]

    return factory


@contextlib.asynccontextmanager
async def _positions(settings: IdentitySettings) -> AsyncIterator[PositionCheck | None]:
    if not settings.settlement_target:
        _log.warning("OPENLOOP_IDENTITY_SETTLEMENT_TARGET is not set: no participant can close")
        yield None
        return
    channel = open_channel(settings.settlement_target)
    try:
        yield SettlementPositions(channel)
    finally:
        await channel.close()


def _verifier(settings: IdentitySettings) -> AssertionVerifier | None:
    """The enrolment assertion verifier; None (every enrolment refused) with no trusted
    issuer configured. Tokens are spent in the database (the guard given per call); the
    verifier's own guard is never consulted."""
    if not settings.trusted_issuers:
        _log.warning(
            "no identity provider is trusted: set OPENLOOP_IDENTITY_TRUSTED_ISSUERS "
            "or every enrolment is refused"
        )
        return None
    return AssertionVerifier(
        settings.trusted_issuers,
        audience=settings.assertion_audience,
        replay_guard=CallerSuppliedGuard(),
        policy=AssurancePolicy.from_config(settings.assurance_policy),
    )

"""Builders and checks the identity service's API tests share (the server fixture is in
conftest.py)."""

from __future__ import annotations

import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.common.v1 import party_pb2
from openloop.identity.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_identity import access
from openloop_identity.app import build
from openloop_identity.assertions import DevIssuer
from openloop_identity.config import IdentitySettings
from openloop_identity.domain.assurance import AAL, IAL
from openloop_identity.domain.thai_id import check_digit
from openloop_identity.tables import audit_events, participants
from openloop_runtime.errors import error_info_of
from openloop_runtime.operator_calls import OperatorToken, operator_channel
from openloop_runtime.operators import Operator, OperatorKey
from openloop_runtime.server import running_server

SMALL = party_pb2.MERCHANT_SIZE_CLASS_SMALL_SHOP
BANK = resources_pb2.PARTICIPANT_ROLE_BANK
AUDIENCE = "openloop-test"
ISSUER = DevIssuer("https://id.test.openloop.dev")
"""The identity provider the test server trusts (see conftest.py)."""
ADULT_BIRTH_DATE = "1980-05-17"
IN_PERSON = resources_pb2.MERCHANT_CHANNEL_IN_PERSON

_OPERATOR = OperatorKey.generate("identity-ops-test-1")
OPERATOR_KID = _OPERATOR.kid
OPERATOR_PRIVATE_PEM = _OPERATOR.private_pem
OPERATOR_KEYS = _OPERATOR.trusted()
"""The operator key the test servers trust (``operator_keys``); tests sign tokens with it."""


OPERATOR = Operator("alice", access.Role.OPERATOR)
"""Who :func:`operator_stub`'s token speaks for, for tests that call the store directly."""


def operator_token(
    role: str = access.Role.OPERATOR,
    *,
    subject: str = "alice",
    audience: str = access.AUDIENCE,
    private_key_pem: bytes = OPERATOR_PRIVATE_PEM,
    kid: str = OPERATOR_KID,
) -> OperatorToken:
    return OperatorToken(private_key_pem, kid=kid, subject=subject, role=role, audience=audience)


def operator_stub(target: str) -> tuple[grpc.aio.Channel, service_pb2_grpc.IdentityServiceStub]:
    """A channel to ``target`` whose every call carries an ``identity-operator`` token, as the
    operators' tools send: the tests' calls need no token of their own."""
    channel = operator_channel(target, operator_token())
    return channel, service_pb2_grpc.IdentityServiceStub(channel)


@dataclass
class Identity:
    stub: service_pb2_grpc.IdentityServiceStub
    """Calls as an ``identity-operator``."""
    db: AsyncEngine
    target: str = ""
    """Where the server listens, for tests that call without the operator's token."""


@contextlib.asynccontextmanager
async def serving_identity(url: str, **overrides: Any) -> AsyncIterator[Identity]:
    """The identity service on a real gRPC server (port 0) over the migrated database at
    ``url``, trusting the test identity provider and operator key; ``overrides`` are
    settings (``require_payment_binding=False``)."""
    settings = IdentitySettings(
        port=0,
        database_url=url,
        trusted_issuers={ISSUER.issuer: ISSUER.jwks},
        assertion_audience=AUDIENCE,
        operator_keys=OPERATOR_KEYS,
        **overrides,
    )
    db = create_async_engine(url)
    try:
        async with running_server("identity.openloop.dev", settings, build(settings)) as running:
            target = f"127.0.0.1:{running.port}"
            channel, stub = operator_stub(target)
            async with channel:
                yield Identity(stub, db, target)
    finally:
        await db.dispose()


def new_key() -> str:
    return uuid.uuid4().hex


def new_participant_id(prefix: str = "bank") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_citizen_number() -> str:
    prefix = str(secrets.choice(range(1, 10))) + "".join(
        secrets.choice("0123456789") for _ in range(11)
    )
    return prefix + str(check_digit(prefix))


def new_tax_id() -> str:
    prefix = "0" + "".join(secrets.choice("0123456789") for _ in range(11))
    return prefix + str(check_digit(prefix))


async def expect_error(
    call: Awaitable[object], code: grpc.StatusCode, reason: str, **metadata: str
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == code, error.details()
    info = error_info_of(error)
    assert info is not None
    assert info.reason == reason
    assert info.domain == "identity.openloop.dev"
    for key, value in metadata.items():
        assert info.metadata[key] == value
    return error


async def create_participant(
    identity: Identity,
    role: resources_pb2.ParticipantRole.ValueType = BANK,
    participant_id: str | None = None,
) -> str:
    participant_id = participant_id or new_participant_id()
    await identity.stub.CreateParticipant(
        service_pb2.CreateParticipantRequest(
            request_id=new_key(),
            participant_id=participant_id,
            participant=resources_pb2.Participant(display_name="Bank", role=role),
        )
    )
    return participant_id


async def set_state(identity: Identity, participant_id: str, state: str) -> None:
    async with identity.db.begin() as conn:
        await conn.execute(
            update(participants)
            .where(participants.c.participant_id == participant_id)
            .values(state=state)
        )


def assertion_for(number: str, *, ial: IAL = IAL.IAL_2_3) -> str:
    """A good enrolment assertion from the test identity provider for ``number``."""
    return ISSUER.id_token(audience=AUDIENCE, pid=number, now=datetime.now(UTC), ial=ial)


def enroll_request(
    host: str,
    number: str | None = None,
    district: str = "1001",
    *,
    birth_date: str = ADULT_BIRTH_DATE,
) -> service_pb2.EnrollCitizenRequest:
    number = number or new_citizen_number()
    return service_pb2.EnrollCitizenRequest(
        request_id=new_key(),
        citizen_id=number,
        home_district_code=district,
        hosting_participant=f"participants/{host}",
        identity_assertion=assertion_for(number),
        birth_date=birth_date,
        full_name="สมชาย ใจดี",
        address="1 Thanon Ratchadamnoen, Phra Nakhon",
        eligibility=resources_pb2.EligibilityAttestations(
            income_within_limit=True, deposits_within_limit=True
        ),
    )


def merchant_request(host: str, **fields: object) -> service_pb2.CreateMerchantRequest:
    merchant = resources_pb2.Merchant(
        tax_id=new_tax_id(),
        display_name="ร้านป้าแดง",
        district_code="1001",
        size_class=SMALL,
        hosting_participant=f"participants/{host}",
        category="groceries",
        channel=IN_PERSON,
        settlement_account="123-4-56789-0",
    )
    for name, value in fields.items():
        setattr(merchant, name, value)
    return service_pb2.CreateMerchantRequest(request_id=new_key(), merchant=merchant)


async def register_payment_key(identity: Identity, bank: str, *, kid: str = "") -> DevIssuer:
    """A key ``bank`` registers to sign its customers' payment authorisations with."""
    issuer = DevIssuer(f"participants/{bank}", kid=kid or f"{bank}-pay-1")
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    end.FromDatetime(datetime.now(UTC) + timedelta(days=30))
    await identity.stub.CreateParticipantCredential(
        service_pb2.CreateParticipantCredentialRequest(
            parent=f"participants/{bank}",
            request_id=new_key(),
            credential=resources_pb2.ParticipantCredential(
                kind=resources_pb2.CREDENTIAL_KIND_ASSERTION_KEY,
                public_jwk=json.dumps(issuer.public_jwk),
                not_before=start,
                not_after=end,
            ),
        )
    )
    return issuer


PRICE = 120_00
"""The amount (satang) the payment tests pay unless they say otherwise."""


def authorise(
    issuer: DevIssuer,
    citizen_number: str,
    payee: str | None,
    satang: int | None = PRICE,
    *,
    aal: AAL = AAL.AAL_2_1,
    currency: str = "THB",
    claims: Mapping[str, Any] | None = None,
) -> str:
    """The payer's authorisation of paying ``satang`` to ``payee`` ("merchants/{id}"), signed
    by its bank. ``None`` leaves that claim out; ``claims`` are added last (malformed ones)."""
    bound: dict[str, Any] = {}
    if payee is not None:
        bound["payee"] = payee
    if satang is not None:
        bound["amount"] = {"currency_code": currency, "satang": satang}
    return issuer.id_token(
        audience=AUDIENCE,
        pid=citizen_number,
        now=datetime.now(UTC),
        aal=aal,
        extra_claims={**bound, **(claims or {})},
    )


async def audit_rows(identity: Identity, resource: str) -> list[Row[Any]]:
    """The audit events about ``resource``, oldest first, straight from the table."""
    async with identity.db.connect() as conn:
        found = await conn.execute(
            select(audit_events)
            .where(audit_events.c.resource == resource)
            .order_by(audit_events.c.event_id)
        )
        return list(found)


async def audit_count(identity: Identity) -> int:
    """How many audit events there are: a refused change must not move it."""
    async with identity.db.connect() as conn:
        return len((await conn.execute(select(audit_events.c.event_id))).all())

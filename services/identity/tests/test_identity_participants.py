"""A participant's lifecycle and credentials, on real identity and settlement servers: closing
asks settlement for the participant's net position."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.common.v1 import money_pb2
from openloop.identity.v1 import resources_pb2, service_pb2
from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop.settlement.v1 import service_pb2_grpc as settlement_grpc
from openloop_identity.app import MIGRATIONS_DIR, build
from openloop_identity.assertions import DevIssuer
from openloop_identity.config import IdentitySettings
from openloop_runtime import migrations
from openloop_runtime.operator_calls import operator_channel
from openloop_runtime.server import running_server
from openloop_settlement import access as settlement_access
from openloop_settlement.app import MIGRATIONS_DIR as SETTLEMENT_MIGRATIONS
from openloop_settlement.app import build as build_settlement
from openloop_settlement.config import SettlementSettings
from services.identity.tests.identity_helpers import (
    OPERATOR_KEYS,
    Identity,
    audit_count,
    audit_rows,
    create_participant,
    expect_error,
    new_key,
    operator_stub,
    operator_token,
)

PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
CERT = resources_pb2.CREDENTIAL_KIND_CLIENT_CERTIFICATE
KEY = resources_pb2.CREDENTIAL_KIND_ASSERTION_KEY


@dataclass
class Platform:
    identity: Identity
    settlement: settlement_grpc.SettlementServiceStub


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(
    fresh_database: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Platform]:
    settlement_url = await fresh_database("settlement_for_identity")
    identity_url = await fresh_database("identity_participants")
    await asyncio.to_thread(migrations.upgrade, SETTLEMENT_MIGRATIONS, settlement_url)
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, identity_url)
    # The same operator key is trusted by both; a token names the service it is for.
    settlement_settings = SettlementSettings(
        port=0, database_url=settlement_url, operator_keys=OPERATOR_KEYS
    )
    async with running_server(
        "settlement.openloop.dev", settlement_settings, build_settlement(settlement_settings)
    ) as settlement:
        settings = IdentitySettings(
            port=0,
            database_url=identity_url,
            settlement_target=f"127.0.0.1:{settlement.port}",
            operator_keys=OPERATOR_KEYS,
        )
        db = create_async_engine(identity_url)
        async with running_server("identity.openloop.dev", settings, build(settings)) as running:
            channel, stub = operator_stub(f"127.0.0.1:{running.port}")
            async with (
                channel,
                operator_channel(
                    f"127.0.0.1:{settlement.port}",
                    operator_token(
                        settlement_access.Role.OPERATOR, audience=settlement_access.AUDIENCE
                    ),
                ) as settlement_channel,
            ):
                yield Platform(
                    Identity(stub, db),
                    settlement_grpc.SettlementServiceStub(settlement_channel),
                )
        await db.dispose()


async def _state(platform: Platform, participant_id: str) -> int:
    reply = await platform.identity.stub.GetParticipant(
        service_pb2.GetParticipantRequest(name=f"participants/{participant_id}")
    )
    return reply.participant.state


async def _move(platform: Platform, debit: str, credit: str, satang: int) -> None:
    await platform.settlement.RecordTransfer(
        settlement_pb2.RecordTransferRequest(
            transfer_id=uuid.uuid4().hex,
            debit_participant=f"participants/{debit}",
            credit_participant=f"participants/{credit}",
            amount=money_pb2.Money(currency_code="THB", amount_satang=satang),
        )
    )


async def test_suspend_reactivate_and_close_once_settled(platform: Platform) -> None:
    stub = platform.identity.stub
    bank = await create_participant(platform.identity)
    other = await create_participant(platform.identity)
    name = f"participants/{bank}"
    await _move(platform, bank, other, 12_500)

    await expect_error(
        stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        PRECONDITION,
        "PARTICIPANT_STATE_CONFLICT",
        state="ACTIVE",
    )
    for _ in range(2):  # suspending twice changes nothing the second time
        reply = await stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))
        assert reply.participant.state == resources_pb2.PARTICIPANT_STATE_SUSPENDED
    await expect_error(
        stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        PRECONDITION,
        "PARTICIPANT_HAS_UNSETTLED_POSITION",
        net_position_satang="-12500",
    )
    assert await _state(platform, bank) == resources_pb2.PARTICIPANT_STATE_SUSPENDED

    reply = await stub.ReactivateParticipant(service_pb2.ReactivateParticipantRequest(name=name))
    assert reply.participant.state == resources_pb2.PARTICIPANT_STATE_ACTIVE
    await stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))
    await _move(platform, other, bank, 12_500)  # settled: net zero again
    closed = await stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name))
    assert closed.participant.state == resources_pb2.PARTICIPANT_STATE_CLOSED
    again = await stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name))
    assert again.participant.state == resources_pb2.PARTICIPANT_STATE_CLOSED
    await expect_error(
        stub.ReactivateParticipant(service_pb2.ReactivateParticipantRequest(name=name)),
        PRECONDITION,
        "PARTICIPANT_STATE_CONFLICT",
        state="CLOSED",
    )


async def test_a_participant_that_never_moved_money_closes(platform: Platform) -> None:
    stub = platform.identity.stub
    bank = await create_participant(platform.identity)
    name = f"participants/{bank}"
    await stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))
    closed = await stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name))
    assert closed.participant.state == resources_pb2.PARTICIPANT_STATE_CLOSED
    await expect_error(
        stub.SuspendParticipant(
            service_pb2.SuspendParticipantRequest(name="participants/nobody-here")
        ),
        grpc.StatusCode.NOT_FOUND,
        "PARTICIPANT_NOT_FOUND",
    )


async def test_a_close_is_audited_once_and_a_refused_close_not_at_all(
    platform: Platform,
) -> None:
    stub = platform.identity.stub
    bank = await create_participant(platform.identity)
    other = await create_participant(platform.identity)
    name = f"participants/{bank}"
    await _move(platform, bank, other, 10_000)
    await stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))
    before = await audit_count(platform.identity)
    await expect_error(
        stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        PRECONDITION,
        "PARTICIPANT_HAS_UNSETTLED_POSITION",
    )
    assert await audit_count(platform.identity) == before
    await platform.settlement.SettleSettlementCycle(
        settlement_pb2.SettleSettlementCycleRequest(
            name=await _close_cycle(platform), request_id=uuid.uuid4().hex
        )
    )
    await stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name))
    await stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name))  # closed already
    events = await audit_rows(platform.identity, name)
    assert [(e.action, e.actor) for e in events] == [
        ("CREATE_PARTICIPANT", "operator:alice"),
        ("SUSPEND_PARTICIPANT", "operator:alice"),
        ("CLOSE_PARTICIPANT", "operator:alice"),
    ]
    assert events[-1].details == {"from_state": "SUSPENDED", "to_state": "CLOSED"}


async def _open_cycle(platform: Platform) -> str:
    reply = await platform.settlement.ListSettlementCycles(
        settlement_pb2.ListSettlementCyclesRequest(page_size=1)
    )
    return reply.settlement_cycles[0].name


async def _close_cycle(platform: Platform) -> str:
    cycle = await _open_cycle(platform)
    await platform.settlement.CloseSettlementCycle(
        settlement_pb2.CloseSettlementCycleRequest(name=cycle, request_id=uuid.uuid4().hex)
    )
    return cycle


async def test_closing_waits_for_every_cycle_to_be_settled_not_for_a_zero_lifetime(
    platform: Platform,
) -> None:
    stub = platform.identity.stub
    bank = await create_participant(platform.identity)
    other = await create_participant(platform.identity)
    name = f"participants/{bank}"
    await _move(platform, bank, other, 30_000)  # bank owes 300 THB in this cycle
    first = await _close_cycle(platform)
    await _move(platform, other, bank, 30_000)  # and is owed 300 THB in the next
    second = await _close_cycle(platform)
    await stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))

    # Net zero over the unsettled cycles, but two central-bank payments are still due.
    await expect_error(
        stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        PRECONDITION,
        "PARTICIPANT_HAS_UNSETTLED_POSITION",
        net_position_satang="0",
        unsettled_cycles="2",
    )
    await platform.settlement.SettleSettlementCycle(
        settlement_pb2.SettleSettlementCycleRequest(name=first, request_id=uuid.uuid4().hex)
    )
    await expect_error(
        stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        PRECONDITION,
        "PARTICIPANT_HAS_UNSETTLED_POSITION",
        net_position_satang="30000",
        unsettled_cycles="1",
    )
    await platform.settlement.SettleSettlementCycle(
        settlement_pb2.SettleSettlementCycleRequest(name=second, request_id=uuid.uuid4().hex)
    )
    closed = await stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name))
    assert closed.participant.state == resources_pb2.PARTICIPANT_STATE_CLOSED


async def test_a_participant_whose_cycles_are_settled_closes_with_a_lifetime_position(
    platform: Platform,
) -> None:
    stub = platform.identity.stub
    bank = await create_participant(platform.identity)
    other = await create_participant(platform.identity)
    name = f"participants/{bank}"
    await _move(platform, bank, other, 45_000)
    cycle = await _close_cycle(platform)
    await stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))
    await expect_error(
        stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        PRECONDITION,
        "PARTICIPANT_HAS_UNSETTLED_POSITION",
        net_position_satang="-45000",
        unsettled_cycles="1",
    )
    await platform.settlement.SettleSettlementCycle(
        settlement_pb2.SettleSettlementCycleRequest(name=cycle, request_id=uuid.uuid4().hex)
    )
    # Paid through the central bank: the lifetime position stays -450 THB, nothing is due.
    position = await platform.settlement.GetPosition(
        settlement_pb2.GetPositionRequest(name=f"{name}/position")
    )
    assert position.position.net_position.amount_satang == -45_000
    assert position.position.unsettled_position.amount_satang == 0
    closed = await stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name))
    assert closed.participant.state == resources_pb2.PARTICIPANT_STATE_CLOSED


def _certificate(participant_id: str, *, days: int = 30) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, participant_id)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier(
                        f"spiffe://openloop.dev/participants/{participant_id}"
                    )
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.PEM).decode()


def _window(days: int) -> tuple[Timestamp, Timestamp]:
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    end.FromDatetime(datetime.now(UTC) + timedelta(days=days))
    return start, end


async def _add(
    platform: Platform, bank: str, credential: resources_pb2.ParticipantCredential
) -> resources_pb2.ParticipantCredential:
    reply = await platform.identity.stub.CreateParticipantCredential(
        service_pb2.CreateParticipantCredentialRequest(
            parent=f"participants/{bank}", request_id=new_key(), credential=credential
        )
    )
    return reply.credential


async def test_certificates_and_keys_rotate_without_a_gap(platform: Platform) -> None:
    stub = platform.identity.stub
    bank = await create_participant(platform.identity)
    old_cert = await _add(
        platform,
        bank,
        resources_pb2.ParticipantCredential(kind=CERT, certificate_pem=_certificate(bank)),
    )
    assert len(old_cert.certificate_sha256) == 64
    assert old_cert.certificate_san_uri == f"spiffe://openloop.dev/participants/{bank}"
    new_cert = await _add(
        platform,
        bank,
        resources_pb2.ParticipantCredential(kind=CERT, certificate_pem=_certificate(bank)),
    )
    start, end = _window(90)
    key = await _add(
        platform,
        bank,
        resources_pb2.ParticipantCredential(
            kind=KEY,
            public_jwk=_jwk(DevIssuer("x", kid="bank-key-2026")),
            not_before=start,
            not_after=end,
        ),
    )
    assert key.key_id == "bank-key-2026"

    listed = await stub.ListParticipantCredentials(
        service_pb2.ListParticipantCredentialsRequest(parent=f"participants/{bank}")
    )
    assert {c.name for c in listed.credentials} == {old_cert.name, new_cert.name, key.name}
    assert not any(c.HasField("revoke_time") for c in listed.credentials)

    revoked = await stub.RevokeParticipantCredential(
        service_pb2.RevokeParticipantCredentialRequest(name=old_cert.name)
    )
    assert revoked.credential.HasField("revoke_time")
    again = await stub.RevokeParticipantCredential(
        service_pb2.RevokeParticipantCredentialRequest(name=old_cert.name)
    )
    assert again.credential.revoke_time == revoked.credential.revoke_time
    listed = await stub.ListParticipantCredentials(
        service_pb2.ListParticipantCredentialsRequest(parent=f"participants/{bank}")
    )
    active = {c.name for c in listed.credentials if not c.HasField("revoke_time")}
    assert active == {new_cert.name, key.name}


def _jwk(issuer: DevIssuer) -> str:
    return json.dumps(issuer.public_jwk)


async def test_credentials_that_cannot_be_used_are_refused(platform: Platform) -> None:
    bank = await create_participant(platform.identity)
    other = await create_participant(platform.identity)
    stub = platform.identity.stub
    pem = _certificate(other)  # names another participant
    await expect_error(
        stub.CreateParticipantCredential(
            service_pb2.CreateParticipantCredentialRequest(
                parent=f"participants/{bank}",
                request_id=new_key(),
                credential=resources_pb2.ParticipantCredential(kind=CERT, certificate_pem=pem),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CREDENTIAL",
        credential_reason="CERTIFICATE_NAMES_ANOTHER_PARTICIPANT",
    )
    mine = _certificate(bank)
    request = service_pb2.CreateParticipantCredentialRequest(
        parent=f"participants/{bank}",
        request_id=new_key(),
        credential=resources_pb2.ParticipantCredential(kind=CERT, certificate_pem=mine),
    )
    first = (await stub.CreateParticipantCredential(request)).credential
    assert (await stub.CreateParticipantCredential(request)).credential == first  # replay
    request.request_id = new_key()
    await expect_error(
        stub.CreateParticipantCredential(request),
        grpc.StatusCode.ALREADY_EXISTS,
        "CREDENTIAL_ALREADY_EXISTS",
    )
    private = DevIssuer("x", kid="leaky")
    leaked = dict(private.public_jwk)
    leaked["d"] = "AAAA"
    start, end = _window(30)
    await expect_error(
        stub.CreateParticipantCredential(
            service_pb2.CreateParticipantCredentialRequest(
                parent=f"participants/{bank}",
                request_id=new_key(),
                credential=resources_pb2.ParticipantCredential(
                    kind=KEY, public_jwk=json.dumps(leaked), not_before=start, not_after=end
                ),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CREDENTIAL",
        credential_reason="KEY_PRIVATE",
    )
    await expect_error(
        stub.RevokeParticipantCredential(
            service_pb2.RevokeParticipantCredentialRequest(
                name=f"participants/{bank}/credentials/k00000000000000000000"
            )
        ),
        grpc.StatusCode.NOT_FOUND,
        "CREDENTIAL_NOT_FOUND",
    )

"""Who may call identity: an operator with a token for identity, for everything that
administers the program or opens personal data; anyone the network lets through (the
gateway) for the methods on a payment's or a wallet move's path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openloop.identity.v1 import service_pb2, service_pb2_grpc
from openloop_identity import access, import_cli
from openloop_runtime.money import thb
from openloop_runtime.operator_calls import OperatorToken
from openloop_runtime.operators import mint
from services.identity.tests.identity_helpers import (
    AUDIENCE,
    ISSUER,
    OPERATOR_KID,
    OPERATOR_PRIVATE_PEM,
    PRICE,
    Identity,
    authorise,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
    new_citizen_number,
    operator_token,
    register_payment_key,
)

SERVICE = service_pb2.DESCRIPTOR.services_by_name["IdentityService"]
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
NAME = "สมชาย ใจดี"
"""The name enroll_request gives every citizen."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bare(identity: Identity) -> AsyncIterator[service_pb2_grpc.IdentityServiceStub]:
    """A stub that sends whatever metadata each call is given, and no token of its own."""
    async with grpc.aio.insecure_channel(identity.target) as channel:
        yield service_pb2_grpc.IdentityServiceStub(channel)


def _metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def _call(
    stub: service_pb2_grpc.IdentityServiceStub,
    method: str,
    metadata: list[tuple[str, str]] | None = None,
) -> Any:
    """``method`` with an empty request: enough to see who the server lets in."""
    descriptor = SERVICE.methods_by_name[method]
    request = getattr(service_pb2, descriptor.input_type.name)()
    if descriptor.client_streaming:

        async def requests() -> AsyncIterator[Any]:
            yield request

        return [reply async for reply in getattr(stub, method)(requests(), metadata=metadata)]
    return await getattr(stub, method)(request, metadata=metadata)


def test_every_rpc_is_either_internal_or_an_operators() -> None:
    methods = set(SERVICE.methods_by_name)
    operator = set(access.OPERATOR_METHODS)
    assert not access.INTERNAL & operator
    assert methods == access.INTERNAL | operator
    assert {"ExportCitizenData", "EraseCitizenData", "ImportCitizens"} <= operator
    for method in ("ExportCitizenData", "EraseCitizenData"):
        assert access.OPERATOR_METHODS[method] == (access.Role.OPERATOR,)


@pytest.mark.parametrize("method", sorted(access.OPERATOR_METHODS))
async def test_an_operator_method_without_a_token_is_unauthenticated(
    bare: service_pb2_grpc.IdentityServiceStub, method: str
) -> None:
    await expect_error(
        _call(bare, method),
        UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
        token_reason="TOKEN_MISSING",
    )


@pytest.mark.parametrize("method", sorted(access.OPERATOR_METHODS))
async def test_a_rules_token_opens_nothing_in_identity(
    bare: service_pb2_grpc.IdentityServiceStub, method: str
) -> None:
    """Signed by a key identity trusts, but for the rules service: wrong audience."""
    rules = mint(
        OPERATOR_PRIVATE_PEM,
        kid=OPERATOR_KID,
        subject="alice",
        role="rules-operator",
        audience="openloop-rules",
    )
    await expect_error(
        _call(bare, method, _metadata(rules)),
        UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
        token_reason="TOKEN_WRONG_AUDIENCE",
    )


@pytest.mark.parametrize(
    "method",
    sorted(m for m, roles in access.OPERATOR_METHODS.items() if access.Role.AUDITOR not in roles),
)
async def test_an_auditor_may_not_change_anything_or_open_personal_data(
    bare: service_pb2_grpc.IdentityServiceStub, method: str
) -> None:
    auditor = operator_token(access.Role.AUDITOR)()
    await expect_error(
        _call(bare, method, _metadata(auditor)),
        DENIED,
        "OPERATOR_NOT_AUTHORISED",
        role="identity-auditor",
    )


async def test_tokens_that_prove_nothing_are_refused_with_their_reason(
    identity: Identity, bare: service_pb2_grpc.IdentityServiceStub
) -> None:
    stranger = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    forged = operator_token(private_key_pem=stranger)()
    unknown_key = operator_token(kid="not-trusted")()
    expired = mint(
        OPERATOR_PRIVATE_PEM,
        kid=OPERATOR_KID,
        subject="alice",
        role=access.Role.OPERATOR,
        audience=access.AUDIENCE,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    for token, reason in (
        (forged, "TOKEN_BAD_SIGNATURE"),
        (unknown_key, "TOKEN_UNKNOWN_KEY"),
        (expired, "TOKEN_EXPIRED"),
        ("not-a-token", "TOKEN_MALFORMED"),
    ):
        await expect_error(
            _call(bare, "CreateParticipant", _metadata(token)),
            UNAUTHENTICATED,
            "OPERATOR_NOT_AUTHENTICATED",
            token_reason=reason,
        )
    # A role of another service, even in a token for identity, may not use identity.
    other_role = operator_token("rules-operator")()
    await expect_error(
        _call(bare, "GetParticipant", _metadata(other_role)), DENIED, "OPERATOR_NOT_AUTHORISED"
    )


async def test_an_auditor_reads_what_holds_no_personal_data(
    identity: Identity, bare: service_pb2_grpc.IdentityServiceStub
) -> None:
    bank = await create_participant(identity)
    number = new_citizen_number()
    citizen = (await identity.stub.EnrollCitizen(enroll_request(bank, number))).citizen
    auditor = _metadata(operator_token(access.Role.AUDITOR, subject="auditor")())

    participant = await bare.GetParticipant(
        service_pb2.GetParticipantRequest(name=f"participants/{bank}"), metadata=auditor
    )
    found = await bare.LookupCitizen(
        service_pb2.LookupCitizenRequest(citizen_id=number), metadata=auditor
    )

    assert participant.participant.name == f"participants/{bank}"
    assert found.citizen.name == citizen.name
    assert found.citizen.hosting_participant == f"participants/{bank}"


async def test_the_gateways_methods_need_no_operator_token(
    identity: Identity, bare: service_pb2_grpc.IdentityServiceStub
) -> None:
    bank = await create_participant(identity)
    acquirer = await create_participant(identity)
    other = await create_participant(identity)
    issuer = await register_payment_key(identity, bank)
    number = new_citizen_number()
    citizen = (await identity.stub.EnrollCitizen(enroll_request(bank, number))).citizen.name
    merchant = (await identity.stub.CreateMerchant(merchant_request(acquirer))).merchant.name

    verified = await bare.VerifyPaymentParties(
        service_pb2.VerifyPaymentPartiesRequest(
            acting_participant=f"participants/{bank}",
            payer=citizen,
            payee=merchant,
            payer_authorization=authorise(issuer, number, merchant),
            amount=thb(PRICE),
        )
    )
    assert verified.payer_wallet_account
    assert (await bare.GetCitizen(service_pb2.GetCitizenRequest(name=citizen))).citizen.name
    assert (await bare.GetMerchant(service_pb2.GetMerchantRequest(name=merchant))).merchant.name
    listed = await bare.ListParticipantCredentials(
        service_pb2.ListParticipantCredentialsRequest(parent=f"participants/{bank}")
    )
    assert len(listed.credentials) == 1
    assertion = ISSUER.id_token(audience=AUDIENCE, pid=number, now=datetime.now(UTC))
    begun = await bare.BeginWalletMove(
        service_pb2.BeginWalletMoveRequest(
            parent=citizen,
            wallet_move_id="to-other",
            to_participant=f"participants/{other}",
            identity_assertion=assertion,
        )
    )
    name = begun.wallet_move.name
    assert (await bare.GetWalletMove(service_pb2.GetWalletMoveRequest(name=name))).wallet_move
    await bare.CompleteWalletMove(service_pb2.CompleteWalletMoveRequest(name=name))


@pytest.mark.parametrize("method", sorted(access.INTERNAL))
async def test_an_internal_method_never_asks_for_a_token(
    bare: service_pb2_grpc.IdentityServiceStub, method: str
) -> None:
    """An empty request is refused for what it lacks, never for a missing token."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(bare, method)
    assert refused.value.code() not in (UNAUTHENTICATED, DENIED)


async def test_without_a_token_no_personal_data_leaves_and_nothing_changes(
    identity: Identity, bare: service_pb2_grpc.IdentityServiceStub
) -> None:
    """The review's demonstration: a caller who writes a host's name in the body, and holds
    no credential, gets none of the citizen's data, erases nothing and creates no one."""
    bank = await create_participant(identity)
    citizen = (await identity.stub.EnrollCitizen(enroll_request(bank))).citizen.name
    acting = f"participants/{bank}"

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bare.ExportCitizenData(
            service_pb2.ExportCitizenDataRequest(name=citizen, acting_participant=acting)
        )
    assert refused.value.code() == UNAUTHENTICATED
    assert NAME not in (refused.value.details() or "")
    await expect_error(
        bare.EraseCitizenData(
            service_pb2.EraseCitizenDataRequest(name=citizen, acting_participant=acting)
        ),
        UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
    )
    await expect_error(
        bare.CreateParticipant(
            service_pb2.CreateParticipantRequest(request_id="rogue", participant_id="rogue")
        ),
        UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
    )

    exported = await identity.stub.ExportCitizenData(
        service_pb2.ExportCitizenDataRequest(name=citizen, acting_participant=acting)
    )
    assert exported.personal_data.full_name == NAME  # still there: nothing was erased
    await expect_error(
        identity.stub.GetParticipant(service_pb2.GetParticipantRequest(name="participants/rogue")),
        grpc.StatusCode.NOT_FOUND,
        "PARTICIPANT_NOT_FOUND",
    )


async def test_exports_and_erasures_name_the_operator_in_the_log(
    identity: Identity,
    bare: service_pb2_grpc.IdentityServiceStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bank = await create_participant(identity)
    citizen = (await identity.stub.EnrollCitizen(enroll_request(bank))).citizen.name
    acting = f"participants/{bank}"
    officer = _metadata(operator_token(subject="dpo-somsri")())

    with caplog.at_level(logging.INFO, logger="openloop_identity.servicer"):
        await bare.ExportCitizenData(
            service_pb2.ExportCitizenDataRequest(name=citizen, acting_participant=acting),
            metadata=officer,
        )
        await bare.EraseCitizenData(
            service_pb2.EraseCitizenDataRequest(name=citizen, acting_participant=acting),
            metadata=officer,
        )

    trail = {
        record.getMessage(): record.__dict__
        for record in caplog.records
        if record.getMessage() in ("citizen data exported", "citizen data erased")
    }
    assert set(trail) == {"citizen data exported", "citizen data erased"}
    for fields in trail.values():
        assert fields["operator"] == "dpo-somsri"
        assert fields["participant"] == bank
        assert fields["citizen"] == citizen.removeprefix("citizens/")
    assert NAME not in caplog.text


async def test_the_import_tool_signs_its_calls(identity: Identity, tmp_path: Path) -> None:
    host = await create_participant(identity)
    source = tmp_path / "cohort.csv"
    row = [new_citizen_number(), "1980-05-17", NAME, "1 Road", "1001", f"participants/{host}"]
    source.write_text(
        ",".join(import_cli.HEADER) + "\n" + ",".join([*row, "true", "true", "", "", "", ""]),
        encoding="utf-8",
    )
    key = tmp_path / "operator.pem"
    key.write_bytes(OPERATOR_PRIVATE_PEM)
    args = ["--target", identity.target, "--file", str(source), "--errors", str(tmp_path / "e")]
    signed = [*args, "--key-file", str(key), "--kid", OPERATOR_KID, "--operator", "alice"]
    untrusted = [*args, "--key-file", str(key), "--kid", "not-trusted", "--operator", "alice"]

    assert await asyncio.to_thread(import_cli.main, untrusted) == import_cli.EXIT_FAILED
    assert await asyncio.to_thread(import_cli.main, signed) == import_cli.EXIT_ALL_ENROLLED


def test_a_token_source_renews_its_token_before_it_expires() -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    token = OperatorToken(
        OPERATOR_PRIVATE_PEM,
        kid=OPERATOR_KID,
        subject="alice",
        role=access.Role.OPERATOR,
        audience=access.AUDIENCE,
        clock=lambda: now,
    )
    first = token()
    assert token() == first
    now += timedelta(minutes=4, seconds=30)
    assert token() != first

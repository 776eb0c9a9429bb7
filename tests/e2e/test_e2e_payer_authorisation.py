"""A bank authorises its customer's payment with a key it registered with the platform: the
token travels through Envoy and the gateway to identity, which checks that it names this
payment's payee and amount, and spends it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from openloop.gateway.v1 import resources_pb2
from openloop.identity.v1 import resources_pb2 as identity_resources
from openloop.identity.v1 import service_pb2 as identity_pb2
from openloop.identity.v1 import service_pb2_grpc as identity_grpc
from openloop_dev.identity_provider import AUDIENCE
from openloop_dev.operators import dev_operator_channel
from openloop_dev.seed import DEMO_CITIZEN_ID
from openloop_identity.assertions import DevIssuer
from openloop_identity.domain.assurance import AAL
from openloop_identity.payment_binding import binding_claims
from openloop_identity.payments import KEY_REFRESH_SECONDS
from tests.e2e.journeys import balance, metadata_of, new_key, pay_request, reason_of


async def _register(platform, participant: str) -> DevIssuer:
    issuer = DevIssuer(f"participants/{participant}", kid=f"{participant}-e2e-{new_key()[:8]}")
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    end.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    layout = platform.mesh.layout
    # Registering a participant's key is an operator's act: the channel signs every call.
    async with dev_operator_channel(
        layout.workdir, "identity", layout.target("identity")
    ) as channel:
        await identity_grpc.IdentityServiceStub(channel).CreateParticipantCredential(
            identity_pb2.CreateParticipantCredentialRequest(
                parent=f"participants/{participant}",
                request_id=new_key(),
                credential=identity_resources.ParticipantCredential(
                    kind=identity_resources.CREDENTIAL_KIND_ASSERTION_KEY,
                    public_jwk=json.dumps(issuer.public_jwk),
                    not_before=start,
                    not_after=end,
                ),
            )
        )
    # Identity re-reads a participant's keys for an unknown key id at most once a second.
    await asyncio.sleep(KEY_REFRESH_SECONDS)
    return issuer


def _authorise(issuer: DevIssuer, payee: str, satang: int, *, pid: str = DEMO_CITIZEN_ID) -> str:
    """The demo citizen's authorisation of paying ``satang`` to ``payee``, from ``issuer``."""
    return issuer.id_token(
        audience=AUDIENCE,
        pid=pid,
        now=datetime.now(UTC),
        aal=AAL.AAL_2_2,
        extra_claims=binding_claims(payee, "THB", satang),
    )


async def test_an_authorised_payment_completes_and_its_token_is_spent(platform):
    p = platform.program
    issuer = await _register(platform, "bank-a")
    token = _authorise(issuer, p.small_shop, 2_00)
    request = pay_request(p.citizen, p.small_shop, 2_00)
    request.payer_authorization = token
    paid = await platform.bank_a.Pay(request)
    assert paid.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED

    again = pay_request(p.citizen, p.small_shop, 2_00)
    again.payer_authorization = token
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.Pay(again)
    error = refused.value
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "INVALID_IDENTITY_ASSERTION"
    assert metadata_of(error)["assertion_reason"] == "ASSERTION_REPLAYED"
    assert DEMO_CITIZEN_ID not in (error.details() or "")


async def test_bank_b_cannot_authorise_bank_a_customers(platform):
    p = platform.program
    issuer = await _register(platform, "bank-b")
    request = pay_request(p.citizen, p.small_shop, 1_00)
    request.payer_authorization = _authorise(issuer, p.small_shop, 1_00)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.Pay(request)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert metadata_of(refused.value)["assertion_reason"] == "ASSERTION_UNTRUSTED_ISSUER"


async def test_a_payment_retried_after_an_outage_uses_its_spent_authorisation_again(platform):
    """Identity spends the authorisation before the payment is stored. With the rules down
    nothing is stored, and the retry the API prescribes (the same key and request) verifies
    again, as the same request; a new request (another key) with that token cannot."""
    p = platform.program
    issuer = await _register(platform, "bank-a")
    token = _authorise(issuer, p.small_shop, 3_00)
    request = pay_request(p.citizen, p.small_shop, 3_00)
    request.payer_authorization = token
    with platform.mesh.service_stopped("rules"), pytest.raises(grpc.aio.AioRpcError) as outage:
        await platform.bank_a.Pay(request)
    assert outage.value.code() == grpc.StatusCode.UNAVAILABLE

    paid = await platform.bank_a.Pay(request)
    assert paid.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    other = pay_request(p.citizen, p.small_shop, 3_00)
    other.payer_authorization = token
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.Pay(other)
    assert metadata_of(refused.value)["assertion_reason"] == "ASSERTION_REPLAYED"


async def test_copies_of_one_authorised_request_sent_at_once_all_get_the_payment(platform):
    p = platform.program
    issuer = await _register(platform, "bank-a")
    request = pay_request(p.citizen, p.small_shop, 2_00)
    request.payer_authorization = _authorise(issuer, p.small_shop, 2_00)
    before = await balance(platform.bank_a, p.citizen)
    replies = await asyncio.gather(*(platform.bank_a.Pay(request) for _ in range(4)))
    assert len({reply.payment.name for reply in replies}) == 1
    assert replies[0].payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    assert await balance(platform.bank_a, p.citizen) == before - 2_00


async def test_a_token_bound_to_one_shop_and_amount_pays_nothing_else(platform):
    """Dynamic linking through the edge: the citizen confirmed 2.00 THB to the small shop;
    the token cannot pay the chain store, nor 500.00 THB to the same shop. Each refusal is
    the bank's to see (PERMISSION_DENIED, ASSERTION_PAYMENT_MISMATCH naming the claim),
    nothing is stored or moved, and the token is not spent: the payment it names goes through."""
    p = platform.program
    issuer = await _register(platform, "bank-a")
    token = _authorise(issuer, p.small_shop, 2_00)
    before = await balance(platform.bank_a, p.citizen)
    for payee, satang, claim in ((p.large_chain, 2_00, "payee"), (p.small_shop, 500_00, "amount")):
        request = pay_request(p.citizen, payee, satang)
        request.payer_authorization = token
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await platform.bank_a.Pay(request)
        error = refused.value
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
        assert reason_of(error) == "INVALID_IDENTITY_ASSERTION"
        assert metadata_of(error)["assertion_reason"] == "ASSERTION_PAYMENT_MISMATCH"
        assert metadata_of(error)["claim"] == claim
        assert "payment" not in metadata_of(error)  # nothing stored
        assert DEMO_CITIZEN_ID not in (error.details() or "")
    assert await balance(platform.bank_a, p.citizen) == before

    request = pay_request(p.citizen, p.small_shop, 2_00)
    request.payer_authorization = token
    paid = await platform.bank_a.Pay(request)
    assert paid.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    assert await balance(platform.bank_a, p.citizen) == before - 2_00


async def test_a_token_that_names_no_payment_is_refused(platform):
    """The platform requires the binding (the default): a token without it authorises
    nothing, and the bank is told which claim is missing."""
    p = platform.program
    issuer = await _register(platform, "bank-a")
    request = pay_request(p.citizen, p.small_shop, 1_00)
    request.payer_authorization = issuer.id_token(
        audience=AUDIENCE, pid=DEMO_CITIZEN_ID, now=datetime.now(UTC), aal=AAL.AAL_2_2
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.Pay(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert metadata_of(refused.value)["assertion_reason"] == "ASSERTION_MISSING_CLAIM"
    assert metadata_of(refused.value)["claim"] == "payee"

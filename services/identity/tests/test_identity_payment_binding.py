"""Dynamic linking through the real server: a payer's authorisation names the payee and the
amount it authorises, and pays nothing else. A refused token is not spent."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio

from openloop.identity.v1 import service_pb2
from openloop_identity.assertions import DevIssuer
from openloop_runtime.money import thb
from services.identity.tests.identity_helpers import (
    AUDIENCE,
    ISSUER,
    PRICE,
    Identity,
    authorise,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
    new_citizen_number,
    register_payment_key,
)

REASON = "INVALID_IDENTITY_ASSERTION"
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class Scene:
    """A bank with a payment key, its enrolled citizen, and two shops at another bank."""

    def __init__(self, bank: str, signer: DevIssuer, number: str, citizen: str) -> None:
        self.bank, self.signer, self.number, self.citizen = bank, signer, number, citizen
        self.shop_a = ""
        self.shop_b = ""

    @classmethod
    async def make(cls, identity: Identity) -> Scene:
        bank = await create_participant(identity)
        acquirer = await create_participant(identity)
        signer = await register_payment_key(identity, bank)
        number = new_citizen_number()
        citizen = (await identity.stub.EnrollCitizen(enroll_request(bank, number))).citizen.name
        scene = cls(bank, signer, number, citizen)
        scene.shop_a = (
            await identity.stub.CreateMerchant(merchant_request(acquirer))
        ).merchant.name
        scene.shop_b = (
            await identity.stub.CreateMerchant(merchant_request(acquirer))
        ).merchant.name
        return scene

    def token(self, payee: str | None, satang: int | None = PRICE, **options: Any) -> str:
        return authorise(self.signer, self.number, payee, satang, **options)

    def verify(
        self,
        token: str,
        payee: str = "",
        satang: int | None = PRICE,
        *,
        binding: str = "",
    ) -> service_pb2.VerifyPaymentPartiesRequest:
        request = service_pb2.VerifyPaymentPartiesRequest(
            acting_participant=f"participants/{self.bank}",
            payer=self.citizen,
            payee=payee or self.shop_a,
            payer_authorization=token,
            request_binding=binding,
        )
        if satang is not None:
            request.amount.CopyFrom(thb(satang))
        return request


@pytest_asyncio.fixture(loop_scope="session")
async def scene(identity: Identity) -> Scene:
    return await Scene.make(identity)


async def test_a_token_for_this_payee_and_amount_pays_it(identity: Identity, scene: Scene) -> None:
    reply = await identity.stub.VerifyPaymentParties(scene.verify(scene.token(scene.shop_a)))
    assert reply.payee.party == scene.shop_a
    assert reply.payer.authentication_level == "2.1"


@pytest.mark.parametrize(
    ("payee", "satang", "claim"),
    [
        pytest.param("shop_b", PRICE, "payee", id="another-payee"),
        pytest.param("shop_a", PRICE + 1, "amount", id="another-amount"),
        pytest.param("shop_a", PRICE * 100, "amount", id="a-hundred-times-the-amount"),
    ],
)
async def test_a_token_for_another_payment_is_refused_and_not_spent(
    identity: Identity, scene: Scene, payee: str, satang: int, claim: str
) -> None:
    """The request is PRICE to shop A; the token authorises another payment. The refusal is
    the caller's fault (PERMISSION_DENIED, like a token for another person), names the claim,
    and rolls back the token's spending: the payment the token names verifies afterwards,
    under another request binding, and only once."""
    payee = scene.shop_b if payee == "shop_b" else scene.shop_a
    token = scene.token(payee, satang)
    error = await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(token, binding="wrong-request")),
        DENIED,
        REASON,
        assertion_reason="ASSERTION_PAYMENT_MISMATCH",
        field="payer_authorization",
        claim=claim,
    )
    assert scene.number not in (error.details() or "")
    await identity.stub.VerifyPaymentParties(
        scene.verify(token, payee, satang, binding="right-request")
    )
    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(token, payee, satang, binding="another")),
        grpc.StatusCode.UNAUTHENTICATED,
        REASON,
        assertion_reason="ASSERTION_REPLAYED",
    )


async def test_a_token_for_another_currency_is_refused(identity: Identity, scene: Scene) -> None:
    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(scene.token(scene.shop_a, currency="USD"))),
        DENIED,
        REASON,
        assertion_reason="ASSERTION_PAYMENT_MISMATCH",
        claim="amount",
    )


async def test_a_refused_token_is_not_spent_for_the_request_that_was_refused(
    identity: Identity, scene: Scene
) -> None:
    """The gateway retries a request under the same binding: a refusal must not leave the
    token claimed under it either (the claim rolls back), so a fresh request with the
    right payment, under any binding, verifies."""
    token = scene.token(scene.shop_a)
    wrong = scene.verify(token, scene.shop_b, binding="r-1")
    for _ in range(2):
        await expect_error(
            identity.stub.VerifyPaymentParties(wrong),
            DENIED,
            REASON,
            assertion_reason="ASSERTION_PAYMENT_MISMATCH",
        )
    await identity.stub.VerifyPaymentParties(scene.verify(token, binding="r-2"))


@pytest.mark.parametrize(
    ("claims", "claim"),
    [
        pytest.param({"amount": {"currency_code": "THB", "satang": 120.0}}, "amount", id="float"),
        pytest.param(
            {"amount": {"currency_code": "THB", "satang": 120.5}}, "amount", id="fraction"
        ),
        pytest.param(
            {"amount": {"currency_code": "THB", "satang": "12000"}}, "amount", id="string"
        ),
        pytest.param({"amount": {"currency_code": "THB", "satang": True}}, "amount", id="boolean"),
        pytest.param(
            {"amount": {"currency_code": "THB", "satang": -12000}}, "amount", id="negative"
        ),
        pytest.param({"amount": {"currency_code": "THB", "satang": 0}}, "amount", id="zero"),
        pytest.param(
            {"amount": {"currency_code": "THB", "satang": 2**63}}, "amount", id="beyond-int64"
        ),
        pytest.param({"amount": {"currency_code": "THB", "satang": 10**40}}, "amount", id="huge"),
        pytest.param(
            {"amount": {"currency_code": "thb", "satang": PRICE}}, "amount", id="lower-case"
        ),
        pytest.param({"amount": {"satang": PRICE}}, "amount", id="no-currency"),
        pytest.param({"amount": {"currency_code": "THB"}}, "amount", id="no-satang"),
        pytest.param(
            {"amount": {"currency_code": "THB", "satang": PRICE, "baht": 120}},
            "amount",
            id="extra-member",
        ),
        pytest.param({"amount": PRICE}, "amount", id="bare-number"),
        pytest.param({"amount": "120.00 THB"}, "amount", id="text"),
        pytest.param({"payee": 42}, "payee", id="payee-number"),
        pytest.param({"payee": "citizens/c1"}, "payee", id="payee-a-citizen"),
        pytest.param({"payee": "merchants/"}, "payee", id="payee-no-id"),
    ],
)
async def test_a_malformed_binding_is_refused(
    identity: Identity, scene: Scene, claims: dict[str, Any], claim: str
) -> None:
    token = scene.token(scene.shop_a, claims=claims)
    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(token)),
        INVALID,
        REASON,
        assertion_reason="ASSERTION_MALFORMED",
        claim=claim,
    )


def _token_with_raw_amount(scene: Scene, amount_json: str) -> str:
    """A token for ``scene.shop_a`` whose ``amount`` claim is ``amount_json`` verbatim."""
    now = datetime.now(UTC)
    claims = {
        "iss": scene.signer.issuer,
        "sub": "s",
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": secrets.token_hex(8),
        "pid": scene.number,
        "ial": "2.3",
        "aal": "2.1",
        "payee": scene.shop_a,
    }
    payload = json.dumps(claims)[:-1] + f',"amount":{amount_json}}}'
    return scene.signer.mint(payload.encode())


async def test_an_amount_in_exponent_notation_is_refused_though_whole(
    identity: Identity, scene: Scene
) -> None:
    """``1.2e4`` is 12000 to some JSON parsers and a float to others: never an amount."""
    token = _token_with_raw_amount(scene, '{"currency_code":"THB","satang":1.2e4}')
    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(token, satang=12_000)),
        INVALID,
        REASON,
        assertion_reason="ASSERTION_MALFORMED",
        claim="amount",
    )


async def test_an_amount_with_a_member_twice_is_refused(identity: Identity, scene: Scene) -> None:
    """Two ``satang`` members: one parser reads the first, another the last, so what the
    customer signed would depend on who reads it. Neither amount pays."""
    token = _token_with_raw_amount(scene, '{"currency_code":"THB","satang":500,"satang":12000}')
    for satang in (500, 12_000):
        await expect_error(
            identity.stub.VerifyPaymentParties(scene.verify(token, satang=satang)),
            INVALID,
            REASON,
            assertion_reason="ASSERTION_MALFORMED",
        )


async def test_the_largest_int64_amount_is_a_well_formed_claim(
    identity: Identity, scene: Scene
) -> None:
    largest = 2**63 - 1
    await identity.stub.VerifyPaymentParties(
        scene.verify(scene.token(scene.shop_a, largest), satang=largest)
    )


@pytest.mark.parametrize(
    ("payee", "satang", "missing"),
    [
        pytest.param(None, PRICE, "payee", id="no-payee"),
        pytest.param("shop_a", None, "amount", id="no-amount"),
        pytest.param(None, None, "payee", id="neither"),
    ],
)
async def test_binding_required_refuses_a_token_without_the_claims(
    identity: Identity, scene: Scene, payee: str | None, satang: int | None, missing: str
) -> None:
    token = scene.token(scene.shop_a if payee else None, satang)
    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(token)),
        INVALID,
        REASON,
        assertion_reason="ASSERTION_MISSING_CLAIM",
        field="payer_authorization",
        claim=missing,
    )
    # Refused again for the same reason, not as a replay: the refusal spent nothing.
    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(token)),
        INVALID,
        REASON,
        assertion_reason="ASSERTION_MISSING_CLAIM",
    )


async def test_binding_required_needs_the_request_amount(identity: Identity, scene: Scene) -> None:
    """The amount is checked as part of the request, before the token is looked at."""
    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(scene.token(None, None), satang=None)),
        INVALID,
        "INVALID_FIELD",
        field="amount",
    )
    for satang, reason in ((0, "INVALID_AMOUNT"), (-1, "INVALID_AMOUNT")):
        await expect_error(
            identity.stub.VerifyPaymentParties(
                scene.verify(scene.token(scene.shop_a), satang=satang)
            ),
            INVALID,
            reason,
            field="amount.amount_satang",
        )


async def test_binding_optional_accepts_a_token_without_the_claims_and_checks_those_it_has(
    lenient: Identity,
) -> None:
    scene = await Scene.make(lenient)
    stub = lenient.stub
    # No claims, and no amount in the request: the migration window's old bank and gateway.
    await stub.VerifyPaymentParties(scene.verify(scene.token(None, None), satang=None))
    await stub.VerifyPaymentParties(scene.verify(scene.token(None, None)))
    # The claims a token carries still bind it.
    await stub.VerifyPaymentParties(scene.verify(scene.token(scene.shop_a, None)))
    await stub.VerifyPaymentParties(scene.verify(scene.token(None, PRICE)))
    await expect_error(
        stub.VerifyPaymentParties(scene.verify(scene.token(scene.shop_b, None))),
        DENIED,
        REASON,
        assertion_reason="ASSERTION_PAYMENT_MISMATCH",
        claim="payee",
    )
    await expect_error(
        stub.VerifyPaymentParties(scene.verify(scene.token(None, PRICE + 1))),
        DENIED,
        REASON,
        assertion_reason="ASSERTION_PAYMENT_MISMATCH",
        claim="amount",
    )
    await expect_error(
        stub.VerifyPaymentParties(scene.verify(scene.token(None, PRICE, claims={"amount": 1.5}))),
        INVALID,
        REASON,
        assertion_reason="ASSERTION_MALFORMED",
        claim="amount",
    )
    # A token bound to an amount cannot be checked without the payment's amount.
    token = scene.token(scene.shop_a, PRICE)
    await expect_error(
        stub.VerifyPaymentParties(scene.verify(token, satang=None)),
        INVALID,
        "INVALID_FIELD",
        field="amount",
    )
    await stub.VerifyPaymentParties(scene.verify(token))  # and that refusal spent nothing


async def test_a_payee_given_as_an_alias_is_bound_by_the_merchant_it_resolves_to(
    identity: Identity, scene: Scene
) -> None:
    qr = (
        await identity.stub.GenerateMerchantQr(
            service_pb2.GenerateMerchantQrRequest(name=scene.shop_a)
        )
    ).payload

    def by_qr(token: str) -> service_pb2.VerifyPaymentPartiesRequest:
        request = scene.verify(token)
        request.payee = ""
        request.payee_alias.qr_payload = qr
        return request

    # The QR of shop A, with a token for shop B: a swapped sticker or a relayed token.
    await expect_error(
        identity.stub.VerifyPaymentParties(by_qr(scene.token(scene.shop_b))),
        DENIED,
        REASON,
        assertion_reason="ASSERTION_PAYMENT_MISMATCH",
        claim="payee",
    )
    # The alias itself is not a payee claim: the token names the merchant, not the QR.
    await expect_error(
        identity.stub.VerifyPaymentParties(by_qr(scene.token(scene.shop_a, claims={"payee": qr}))),
        INVALID,
        REASON,
        assertion_reason="ASSERTION_MALFORMED",
        claim="payee",
    )
    reply = await identity.stub.VerifyPaymentParties(by_qr(scene.token(scene.shop_a)))
    assert reply.payee.party == scene.shop_a


async def test_an_identity_provider_s_token_is_bound_too(identity: Identity, scene: Scene) -> None:
    def provider_token(payee: str) -> str:
        return ISSUER.id_token(
            audience=AUDIENCE,
            pid=scene.number,
            now=datetime.now(UTC),
            extra_claims={"payee": payee, "amount": {"currency_code": "THB", "satang": PRICE}},
        )

    await expect_error(
        identity.stub.VerifyPaymentParties(scene.verify(provider_token(scene.shop_b))),
        DENIED,
        REASON,
        assertion_reason="ASSERTION_PAYMENT_MISMATCH",
        claim="payee",
    )
    await identity.stub.VerifyPaymentParties(scene.verify(provider_token(scene.shop_a)))

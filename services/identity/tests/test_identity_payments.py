"""Verify for payment through the real server: the payer's authorisation (signed by the
acting participant's registered key), the payee by alias, and the facts the rules need."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import grpc

from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity.assertions import DevIssuer
from openloop_identity.domain.assurance import AAL
from openloop_identity.payments import KEY_REFRESH_SECONDS
from openloop_identity.requests import THAILAND, age_on
from openloop_runtime.money import thb
from services.identity.tests.identity_helpers import (
    ADULT_BIRTH_DATE,
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


async def _scene(identity: Identity) -> tuple[str, DevIssuer, str, str, str]:
    """A bank with a payment key, its enrolled citizen, and a merchant at another bank."""
    bank = await create_participant(identity)
    acquirer = await create_participant(identity)
    issuer = await register_payment_key(identity, bank)
    number = new_citizen_number()
    citizen = (await identity.stub.EnrollCitizen(enroll_request(bank, number))).citizen.name
    request = merchant_request(acquirer, category="fresh_food")
    request.merchant.tax_status.CopyFrom(
        resources_pb2.TaxStatus(vat_registered=True, years_filed=[2023, 2024])
    )
    merchant = (await identity.stub.CreateMerchant(request)).merchant.name
    return bank, issuer, number, citizen, merchant


def _verify(
    bank: str, citizen: str, merchant: str, token: str = ""
) -> service_pb2.VerifyPaymentPartiesRequest:
    return service_pb2.VerifyPaymentPartiesRequest(
        acting_participant=f"participants/{bank}",
        payer=citizen,
        payee=merchant,
        payer_authorization=token,
        amount=thb(PRICE),
    )


async def test_an_authorised_payment_gets_every_fact_the_rules_need(identity: Identity) -> None:
    bank, issuer, number, citizen, merchant = await _scene(identity)
    reply = await identity.stub.VerifyPaymentParties(
        _verify(bank, citizen, merchant, authorise(issuer, number, merchant))
    )
    today = datetime.now(UTC).astimezone(THAILAND).date()
    assert reply.payer.age_years == age_on(date.fromisoformat(ADULT_BIRTH_DATE), today)
    assert reply.payer.identity_verified
    assert reply.payer.authentication_level == "2.1"
    assert reply.payee.category == "fresh_food"
    assert reply.payee.sells_in_person
    assert reply.payee.tax_registered
    assert list(reply.payee.tax_years_filed) == [2023, 2024]
    # No personal data in the facts, whatever the field names.
    wire = reply.SerializeToString()
    assert number.encode() not in wire
    assert ADULT_BIRTH_DATE.encode() not in wire


async def test_authorisations_that_do_not_hold_are_refused(identity: Identity) -> None:
    bank, issuer, number, citizen, merchant = await _scene(identity)
    stub = identity.stub
    spent = authorise(issuer, number, merchant)
    await stub.VerifyPaymentParties(_verify(bank, citizen, merchant, spent))
    other_bank = await create_participant(identity)
    other_issuer = await register_payment_key(identity, other_bank)
    for token, code, reason in (
        (spent, grpc.StatusCode.UNAUTHENTICATED, "ASSERTION_REPLAYED"),
        (
            authorise(issuer, number, merchant, aal=AAL.AAL_1),
            grpc.StatusCode.PERMISSION_DENIED,
            "ASSERTION_AAL_TOO_LOW",
        ),
        (
            authorise(issuer, new_citizen_number(), merchant),
            grpc.StatusCode.PERMISSION_DENIED,
            "ASSERTION_SUBJECT_MISMATCH",
        ),
        # Another participant's key cannot vouch for this bank's payment.
        (
            authorise(other_issuer, number, merchant),
            grpc.StatusCode.UNAUTHENTICATED,
            "ASSERTION_UNTRUSTED_ISSUER",
        ),
        # Right issuer name, unregistered key.
        (
            authorise(DevIssuer(f"participants/{bank}", kid="not-registered"), number, merchant),
            grpc.StatusCode.UNAUTHENTICATED,
            "ASSERTION_UNKNOWN_KEY",
        ),
        ("garbage", grpc.StatusCode.INVALID_ARGUMENT, "ASSERTION_MALFORMED"),
    ):
        error = await expect_error(
            stub.VerifyPaymentParties(_verify(bank, citizen, merchant, token)),
            code,
            REASON,
            assertion_reason=reason,
            field="payer_authorization",
        )
        assert number not in (error.details() or "")


async def test_an_authorisation_verifies_again_for_the_request_it_was_spent_for(
    identity: Identity,
) -> None:
    """The gateway names its request (``request_binding``): that request, retried or sent
    twice at once, verifies its authorisation again; any other request, or none, finds it
    spent."""
    bank, issuer, number, citizen, merchant = await _scene(identity)
    stub = identity.stub

    def bound(token: str, binding: str) -> service_pb2.VerifyPaymentPartiesRequest:
        request = _verify(bank, citizen, merchant, token)
        request.request_binding = binding
        return request

    token = authorise(issuer, number, merchant)
    replies = await asyncio.gather(
        *(stub.VerifyPaymentParties(bound(token, "r1")) for _ in range(4))
    )
    assert {reply.payer.authentication_level for reply in replies} == {"2.1"}
    await stub.VerifyPaymentParties(bound(token, "r1"))
    for binding in ("r2", ""):
        await expect_error(
            stub.VerifyPaymentParties(bound(token, binding)),
            grpc.StatusCode.UNAUTHENTICATED,
            REASON,
            assertion_reason="ASSERTION_REPLAYED",
        )
    # Spent without a binding, a token is spent for every request.
    unbound = authorise(issuer, number, merchant)
    await stub.VerifyPaymentParties(bound(unbound, ""))
    await expect_error(
        stub.VerifyPaymentParties(bound(unbound, "")),
        grpc.StatusCode.UNAUTHENTICATED,
        REASON,
        assertion_reason="ASSERTION_REPLAYED",
    )
    await expect_error(
        stub.VerifyPaymentParties(bound(authorise(issuer, number, merchant), "x" * 129)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="request_binding",
    )


async def test_a_participant_without_a_key_cannotauthorise(identity: Identity) -> None:
    bank = await create_participant(identity)
    number = new_citizen_number()
    citizen = (await identity.stub.EnrollCitizen(enroll_request(bank, number))).citizen.name
    merchant = (await identity.stub.CreateMerchant(merchant_request(bank))).merchant.name
    token = authorise(DevIssuer(f"participants/{bank}", kid="k"), number, merchant)
    await expect_error(
        identity.stub.VerifyPaymentParties(_verify(bank, citizen, merchant, token)),
        grpc.StatusCode.UNAUTHENTICATED,
        REASON,
        assertion_reason="ASSERTION_UNKNOWN_KEY",
    )


async def test_the_payee_may_be_given_as_a_scanned_qr(identity: Identity) -> None:
    bank, issuer, number, citizen, merchant = await _scene(identity)
    qr = (
        await identity.stub.GenerateMerchantQr(service_pb2.GenerateMerchantQrRequest(name=merchant))
    ).payload
    request = _verify(bank, citizen, "", authorise(issuer, number, merchant))
    request.payee_alias.qr_payload = qr
    reply = await identity.stub.VerifyPaymentParties(request)
    assert reply.payee.party == merchant
    # An alias that names a citizen is not a payee.
    request = _verify(bank, citizen, "", authorise(issuer, number, merchant))
    request.payee_alias.citizen_id = number
    await expect_error(
        identity.stub.VerifyPaymentParties(request),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="payee_alias",
    )


async def test_a_payment_without_an_authorisation_is_refused(identity: Identity) -> None:
    bank, _, _, citizen, merchant = await _scene(identity)
    await expect_error(
        identity.stub.VerifyPaymentParties(_verify(bank, citizen, merchant)),
        grpc.StatusCode.INVALID_ARGUMENT,
        REASON,
        assertion_reason="ASSERTION_MISSING_CLAIM",
        field="payer_authorization",
    )


async def test_a_newly_registered_key_works_within_a_second(identity: Identity) -> None:
    bank, issuer, number, citizen, merchant = await _scene(identity)
    # The bank's keys are now cached by the first payment.
    await identity.stub.VerifyPaymentParties(
        _verify(bank, citizen, merchant, authorise(issuer, number, merchant))
    )
    rotated = await register_payment_key(identity, bank, kid=f"{bank}-pay-2")
    # Unknown key ids re-read a participant's keys at most once a KEY_REFRESH_SECONDS.
    await asyncio.sleep(KEY_REFRESH_SECONDS)
    reply = await identity.stub.VerifyPaymentParties(
        _verify(bank, citizen, merchant, authorise(rotated, number, merchant))
    )
    assert reply.payer.authentication_level == "2.1"

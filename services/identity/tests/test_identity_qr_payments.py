"""A payment to a scanned Thai QR, through the real server: a dynamic QR (point of
initiation 12) asks for one amount, and a payment for any other amount is refused before
anything is written (INVALID_ARGUMENT, QR_AMOUNT_MISMATCH, naming both amounts); the payer's
authorisation is not spent, so the payment for the QR's amount still goes through. A static
QR names no amount and pays any."""

from __future__ import annotations

import grpc
import pytest_asyncio

from openloop.identity.v1 import service_pb2
from openloop_runtime.money import thb
from services.identity.tests.identity_helpers import (
    Identity,
    audit_count,
    authorise,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
    new_citizen_number,
    register_payment_key,
)

QR_PRICE = 42_00
"""What the shop's dynamic QR asks for (42.00 THB)."""
OTHER_PRICE = 100_00
INVALID = grpc.StatusCode.INVALID_ARGUMENT
MISMATCH = "QR_AMOUNT_MISMATCH"


class Shop:
    """A bank with a payment key and its enrolled citizen, and a shop at another bank with
    its static QR and a dynamic QR asking for ``QR_PRICE``."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    async def open(self) -> Shop:
        stub = self.identity.stub
        self.bank = await create_participant(self.identity)
        acquirer = await create_participant(self.identity)
        self.signer = await register_payment_key(self.identity, self.bank)
        self.number = new_citizen_number()
        enrolled = await stub.EnrollCitizen(enroll_request(self.bank, self.number))
        self.citizen = enrolled.citizen.name
        self.merchant = (await stub.CreateMerchant(merchant_request(acquirer))).merchant.name
        self.static_qr = (
            await stub.GenerateMerchantQr(service_pb2.GenerateMerchantQrRequest(name=self.merchant))
        ).payload
        self.dynamic_qr = (
            await stub.GenerateMerchantQr(
                service_pb2.GenerateMerchantQrRequest(name=self.merchant, amount=thb(QR_PRICE))
            )
        ).payload
        return self

    def token(self, satang: int | None) -> str:
        """The payer's authorisation of paying ``satang`` to the shop (None: no amount)."""
        return authorise(self.signer, self.number, self.merchant, satang)

    def by_qr(
        self, qr: str, token: str, satang: int | None, *, binding: str = ""
    ) -> service_pb2.VerifyPaymentPartiesRequest:
        """The gateway's request for a payment of ``satang`` whose payee is a scanned QR."""
        request = service_pb2.VerifyPaymentPartiesRequest(
            acting_participant=f"participants/{self.bank}",
            payer=self.citizen,
            payer_authorization=token,
            request_binding=binding,
        )
        request.payee_alias.qr_payload = qr
        if satang is not None:
            request.amount.CopyFrom(thb(satang))
        return request

    def by_name(self, token: str, satang: int) -> service_pb2.VerifyPaymentPartiesRequest:
        request = service_pb2.VerifyPaymentPartiesRequest(
            acting_participant=f"participants/{self.bank}",
            payer=self.citizen,
            payee=self.merchant,
            payer_authorization=token,
        )
        request.amount.CopyFrom(thb(satang))
        return request


@pytest_asyncio.fixture(loop_scope="session")
async def shop(identity: Identity) -> Shop:
    return await Shop(identity).open()


async def test_a_dynamic_qr_pays_the_amount_it_asks(identity: Identity, shop: Shop) -> None:
    reply = await identity.stub.VerifyPaymentParties(
        shop.by_qr(shop.dynamic_qr, shop.token(QR_PRICE), QR_PRICE)
    )
    assert reply.payee.party == shop.merchant


async def test_a_dynamic_qr_paid_with_another_amount_is_refused_and_nothing_is_written(
    identity: Identity, shop: Shop
) -> None:
    """The request and its authorisation agree on 100.00 THB, but the QR the customer
    scanned asks for 42.00: the payment is not the one the shop presented."""
    token = shop.token(OTHER_PRICE)
    events = await audit_count(identity)
    error = await expect_error(
        identity.stub.VerifyPaymentParties(shop.by_qr(shop.dynamic_qr, token, OTHER_PRICE)),
        INVALID,
        MISMATCH,
        field="amount",
        qr_amount_satang=str(QR_PRICE),
        requested_amount_satang=str(OTHER_PRICE),
    )
    assert shop.number not in (error.details() or "")
    assert await audit_count(identity) == events
    # The refusal spent nothing: the token still verifies the payment it names (by name).
    await identity.stub.VerifyPaymentParties(shop.by_name(token, OTHER_PRICE))


async def test_a_refused_dynamic_qr_payment_is_retried_with_the_qr_s_amount(
    identity: Identity, shop: Shop
) -> None:
    """The customer confirmed the QR's 42.00 THB, but the bank sent 100.00: refused for the
    QR (not as a token for another payment), and the corrected request, retried under one
    binding as the gateway retries after an outage, verifies with the same token."""
    token = shop.token(QR_PRICE)
    await expect_error(
        identity.stub.VerifyPaymentParties(
            shop.by_qr(shop.dynamic_qr, token, OTHER_PRICE, binding="wrong-amount")
        ),
        INVALID,
        MISMATCH,
        qr_amount_satang=str(QR_PRICE),
        requested_amount_satang=str(OTHER_PRICE),
    )
    corrected = shop.by_qr(shop.dynamic_qr, token, QR_PRICE, binding="right-amount")
    first = await identity.stub.VerifyPaymentParties(corrected)
    again = await identity.stub.VerifyPaymentParties(corrected)
    assert first.payee.party == again.payee.party == shop.merchant


async def test_a_dynamic_qr_is_refused_without_the_payment_s_amount(lenient: Identity) -> None:
    """Where the request may omit its amount, a dynamic QR still cannot be checked without it."""
    shop = await Shop(lenient).open()
    await expect_error(
        lenient.stub.VerifyPaymentParties(shop.by_qr(shop.dynamic_qr, shop.token(None), None)),
        INVALID,
        "INVALID_FIELD",
        field="amount",
    )
    # A static QR names no amount, so there is nothing to check: as before.
    reply = await lenient.stub.VerifyPaymentParties(
        shop.by_qr(shop.static_qr, shop.token(None), None)
    )
    assert reply.payee.party == shop.merchant


async def test_a_static_qr_pays_any_amount(identity: Identity, shop: Shop) -> None:
    for satang in (QR_PRICE, OTHER_PRICE):
        reply = await identity.stub.VerifyPaymentParties(
            shop.by_qr(shop.static_qr, shop.token(satang), satang)
        )
        assert reply.payee.party == shop.merchant

"""The alias directory, merchant QR codes and the district table, through the real server."""

from __future__ import annotations

import secrets

import grpc
import pytest

from openloop.common.v1 import money_pb2, party_pb2
from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity.domain import thai_qr
from services.identity.tests.identity_helpers import (
    Identity,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
    new_citizen_number,
    new_tax_id,
)

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _new_mobile() -> str:
    return "08" + "".join(secrets.choice("0123456789") for _ in range(8))


def _thb(satang: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="THB", amount_satang=satang)


async def _resolve(identity: Identity, **alias: str) -> service_pb2.ResolveAliasResponse:
    reply: service_pb2.ResolveAliasResponse = await identity.stub.ResolveAlias(
        service_pb2.ResolveAliasRequest(**alias)
    )
    return reply


async def test_a_merchant_keeps_the_facts_the_rules_need(identity: Identity) -> None:
    host = await create_participant(identity)
    request = merchant_request(
        host,
        category="fresh_food",
        channel=resources_pb2.MERCHANT_CHANNEL_ONLINE,
        phone_number=_new_mobile(),
    )
    request.merchant.tax_status.CopyFrom(
        resources_pb2.TaxStatus(vat_registered=True, years_filed=[2024, 2023])
    )
    created = (await identity.stub.CreateMerchant(request)).merchant
    fetched = (
        await identity.stub.GetMerchant(service_pb2.GetMerchantRequest(name=created.name))
    ).merchant
    for merchant in (created, fetched):
        assert merchant.category == "fresh_food"
        assert merchant.channel == resources_pb2.MERCHANT_CHANNEL_ONLINE
        assert merchant.tax_status.vat_registered
        assert not merchant.tax_status.corporate_income_tax
        assert list(merchant.tax_status.years_filed) == [2023, 2024]
        assert merchant.settlement_account == "123-4-56789-0"
        assert merchant.phone_number == ""  # input only: stored as a keyed hash
    replay = (await identity.stub.CreateMerchant(request)).merchant
    assert replay.name == created.name


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"category": ""}, "merchant.category"),
        ({"category": "Fresh Food"}, "merchant.category"),
        ({"channel": resources_pb2.MERCHANT_CHANNEL_UNSPECIFIED}, "merchant.channel"),
        ({"settlement_account": "x" * 65}, "merchant.settlement_account"),
    ],
)
async def test_merchant_facts_are_validated(
    identity: Identity, fields: dict[str, object], field: str
) -> None:
    host = await create_participant(identity)
    await expect_error(
        identity.stub.CreateMerchant(merchant_request(host, **fields)),
        INVALID,
        "INVALID_FIELD",
        field=field,
    )


async def test_tax_years_are_validated(identity: Identity) -> None:
    host = await create_participant(identity)
    request = merchant_request(host)
    request.merchant.tax_status.years_filed.extend([2023, 2023])
    await expect_error(
        identity.stub.CreateMerchant(request),
        INVALID,
        "INVALID_FIELD",
        field="merchant.tax_status.years_filed",
    )


async def test_districts_must_be_in_the_table(identity: Identity) -> None:
    host = await create_participant(identity)
    # Well formed, but no such district (province 10 has 50 khet).
    await expect_error(
        identity.stub.EnrollCitizen(enroll_request(host, district="1099")),
        INVALID,
        "UNKNOWN_DISTRICT",
        field="home_district_code",
    )
    await expect_error(
        identity.stub.CreateMerchant(merchant_request(host, district_code="9999")),
        INVALID,
        "UNKNOWN_DISTRICT",
        field="merchant.district_code",
    )


async def test_every_alias_of_a_merchant_resolves_to_it(identity: Identity) -> None:
    host = await create_participant(identity)
    phone = _new_mobile()
    merchant = (
        await identity.stub.CreateMerchant(merchant_request(host, phone_number=phone))
    ).merchant
    expected = (merchant.name, party_pb2.PARTY_KIND_MERCHANT, f"participants/{host}")
    static = (
        await identity.stub.GenerateMerchantQr(
            service_pb2.GenerateMerchantQrRequest(name=merchant.name)
        )
    ).payload
    bill = thai_qr.generate(
        thai_qr.ThaiQr(
            thai_qr.PointOfInitiation.STATIC,
            thai_qr.BillPayment(biller_id=merchant.tax_id + "00", ref1="INV1"),
        )
    )
    promptpay_mobile = thai_qr.generate(
        thai_qr.ThaiQr(
            thai_qr.PointOfInitiation.STATIC,
            thai_qr.PromptPayCredit(thai_qr.ProxyKind.MOBILE, phone),
        )
    )
    for alias in (
        {"tax_id": merchant.tax_id},
        {"phone_number": phone},
        {"qr_payload": static},
        {"qr_payload": bill},
        {"qr_payload": promptpay_mobile},
    ):
        reply = await _resolve(identity, **alias)
        assert (reply.party, reply.kind, reply.hosting_participant) == expected, alias
        assert not reply.HasField("qr_amount")


async def test_a_dynamic_qr_carries_its_amount(identity: Identity) -> None:
    host = await create_participant(identity)
    merchant = (await identity.stub.CreateMerchant(merchant_request(host))).merchant
    payload = (
        await identity.stub.GenerateMerchantQr(
            service_pb2.GenerateMerchantQrRequest(name=merchant.name, amount=_thb(12_345))
        )
    ).payload
    parsed = thai_qr.parse(payload)
    assert parsed.point_of_initiation is thai_qr.PointOfInitiation.DYNAMIC
    assert parsed.amount_satang == 12_345
    reply = await _resolve(identity, qr_payload=payload)
    assert reply.party == merchant.name
    assert reply.qr_amount.amount_satang == 12_345
    assert reply.qr_amount.currency_code == "THB"


async def test_a_citizen_resolves_by_citizen_id_and_by_promptpay_qr(identity: Identity) -> None:
    host = await create_participant(identity)
    number = new_citizen_number()
    citizen = (await identity.stub.EnrollCitizen(enroll_request(host, number))).citizen
    qr = thai_qr.generate(
        thai_qr.ThaiQr(
            thai_qr.PointOfInitiation.STATIC,
            thai_qr.PromptPayCredit(thai_qr.ProxyKind.NATIONAL_ID, number),
        )
    )
    for alias in ({"citizen_id": number}, {"qr_payload": qr}):
        reply = await _resolve(identity, **alias)
        assert reply.party == citizen.name
        assert reply.kind == party_pb2.PARTY_KIND_CITIZEN
        assert reply.hosting_participant == f"participants/{host}"


async def test_one_phone_number_names_one_party(identity: Identity) -> None:
    host = await create_participant(identity)
    phone = _new_mobile()
    first = (
        await identity.stub.CreateMerchant(merchant_request(host, phone_number=phone))
    ).merchant
    second = merchant_request(host, phone_number=phone)
    await expect_error(
        identity.stub.CreateMerchant(second),
        grpc.StatusCode.ALREADY_EXISTS,
        "ALIAS_TAKEN",
        alias_kind="PHONE",
    )
    # Nothing of the refused merchant was written: its tax ID is still free.
    await expect_error(
        _resolve(identity, tax_id=second.merchant.tax_id),
        NOT_FOUND,
        "ALIAS_NOT_FOUND",
        alias_kind="TAX_ID",
    )
    assert (await _resolve(identity, phone_number=phone)).party == first.name


async def test_resolving_refuses_bad_aliases_clearly(identity: Identity) -> None:
    valid = "00020101021129370016A000000677010111011300668012345675802TH530376463046197"
    await expect_error(
        _resolve(identity, qr_payload=valid[:-1] + "8"),
        INVALID,
        "INVALID_QR",
        qr_reason="QR_CRC_MISMATCH",
    )
    await expect_error(
        _resolve(identity, qr_payload="0002"), INVALID, "INVALID_QR", field="qr_payload"
    )
    await expect_error(_resolve(identity), INVALID, "INVALID_FIELD", field="alias")
    await expect_error(_resolve(identity, phone_number="12345"), INVALID, "INVALID_PHONE_NUMBER")
    await expect_error(_resolve(identity, tax_id="1234567890123"), INVALID, "INVALID_TAX_ID")
    number = new_citizen_number()
    error = await expect_error(
        _resolve(identity, citizen_id=number), NOT_FOUND, "ALIAS_NOT_FOUND", alias_kind="CITIZEN_ID"
    )
    assert number not in (error.details() or "")
    await expect_error(
        _resolve(identity, tax_id=new_tax_id()), NOT_FOUND, "ALIAS_NOT_FOUND", alias_kind="TAX_ID"
    )


async def test_qr_generation_refuses_bad_amounts(identity: Identity) -> None:
    host = await create_participant(identity)
    merchant = (await identity.stub.CreateMerchant(merchant_request(host))).merchant
    for amount, reason in ((_thb(0), "INVALID_AMOUNT"), (_thb(10**13), "INVALID_AMOUNT")):
        await expect_error(
            identity.stub.GenerateMerchantQr(
                service_pb2.GenerateMerchantQrRequest(name=merchant.name, amount=amount)
            ),
            INVALID,
            reason,
        )
    await expect_error(
        identity.stub.GenerateMerchantQr(
            service_pb2.GenerateMerchantQrRequest(name="merchants/m0000")
        ),
        NOT_FOUND,
        "MERCHANT_NOT_FOUND",
    )

"""IdentityService through a real gRPC server on a real PostgreSQL database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

import grpc
import pytest
import pytest_asyncio
from sqlalchemy import text

from openloop.common.v1 import party_pb2
from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity.assertions import DevIssuer
from openloop_identity.requests import THAILAND, age_on
from openloop_runtime.errors import error_info_of
from openloop_runtime.money import thb
from services.identity.tests.identity_helpers import (
    ADULT_BIRTH_DATE,
    BANK,
    PRICE,
    SMALL,
    Identity,
    authorise,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
    new_citizen_number,
    new_key,
    new_participant_id,
    register_payment_key,
    set_state,
)

# --- participants ---------------------------------------------------------------------


async def test_create_participant_is_active_and_replayable(identity: Identity) -> None:
    request = service_pb2.CreateParticipantRequest(
        request_id=new_key(),
        participant_id="bank-a-" + secrets.token_hex(3),
        participant=resources_pb2.Participant(display_name="Bank A", role=BANK),
    )
    created = (await identity.stub.CreateParticipant(request)).participant
    assert created.name == f"participants/{request.participant_id}"
    assert created.state == resources_pb2.PARTICIPANT_STATE_ACTIVE
    assert created.role == BANK
    assert created.display_name == "Bank A"
    assert created.create_time.seconds > 0

    replayed = (await identity.stub.CreateParticipant(request)).participant
    assert replayed == created

    fetched = await identity.stub.GetParticipant(
        service_pb2.GetParticipantRequest(name=created.name)
    )
    assert fetched.participant == created


async def test_participant_id_taken_by_another_request(identity: Identity) -> None:
    participant_id = await create_participant(identity)
    await expect_error(
        identity.stub.CreateParticipant(
            service_pb2.CreateParticipantRequest(
                request_id=new_key(),
                participant_id=participant_id,
                participant=resources_pb2.Participant(role=BANK),
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
        "PARTICIPANT_ALREADY_EXISTS",
        resource=f"participants/{participant_id}",
    )


async def test_request_id_reused_for_another_participant(identity: Identity) -> None:
    key = new_key()
    request = service_pb2.CreateParticipantRequest(
        request_id=key,
        participant_id=new_participant_id(),
        participant=resources_pb2.Participant(role=BANK),
    )
    await identity.stub.CreateParticipant(request)
    request.participant_id = new_participant_id()
    await expect_error(
        identity.stub.CreateParticipant(request),
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_REUSED",
        field="request_id",
    )


@pytest.mark.parametrize(
    ("request_id", "participant_id", "role", "field"),
    [
        ("k1", "Bank-A", BANK, "participant_id"),
        ("k2", "-bank", BANK, "participant_id"),
        ("k3", "", BANK, "participant_id"),
        ("k4", "b" * 64, BANK, "participant_id"),
        ("k5", "bank-x", resources_pb2.PARTICIPANT_ROLE_UNSPECIFIED, "participant.role"),
        ("k6", "bank-x", 99, "participant.role"),
        ("", "bank-x", BANK, "request_id"),
    ],
)
async def test_create_participant_rejects_bad_input(
    identity: Identity,
    request_id: str,
    participant_id: str,
    role: resources_pb2.ParticipantRole.ValueType,
    field: str,
) -> None:
    await expect_error(
        identity.stub.CreateParticipant(
            service_pb2.CreateParticipantRequest(
                request_id=request_id,
                participant_id=participant_id,
                participant=resources_pb2.Participant(role=role),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field=field,
    )


async def test_get_participant_errors(identity: Identity) -> None:
    await expect_error(
        identity.stub.GetParticipant(service_pb2.GetParticipantRequest(name="participants/nope")),
        grpc.StatusCode.NOT_FOUND,
        "PARTICIPANT_NOT_FOUND",
        resource="participants/nope",
    )
    await expect_error(
        identity.stub.GetParticipant(service_pb2.GetParticipantRequest(name="banks/nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="name",
    )


# --- citizens -------------------------------------------------------------------------


async def test_enroll_citizen_then_get_and_lookup(identity: Identity) -> None:
    host = await create_participant(identity)
    number = new_citizen_number()
    request = enroll_request(host, number, district="5001")
    citizen = (await identity.stub.EnrollCitizen(request)).citizen
    assert citizen.name.startswith("citizens/c")
    assert len(citizen.name.removeprefix("citizens/")) == 21
    assert citizen.home_district_code == "5001"
    assert citizen.hosting_participant == f"participants/{host}"

    assert (await identity.stub.EnrollCitizen(request)).citizen == citizen
    fetched = await identity.stub.GetCitizen(service_pb2.GetCitizenRequest(name=citizen.name))
    assert fetched.citizen == citizen
    found = await identity.stub.LookupCitizen(service_pb2.LookupCitizenRequest(citizen_id=number))
    assert found.citizen == citizen


async def test_documented_citizen_ids_enrol(identity: Identity) -> None:
    host = await create_participant(identity)
    for number in ("1345951597671", "6000000000000"):
        citizen = (await identity.stub.EnrollCitizen(enroll_request(host, number))).citizen
        assert citizen.name.startswith("citizens/")


async def test_same_citizen_under_another_request_is_already_enrolled(identity: Identity) -> None:
    host = await create_participant(identity)
    other_host = await create_participant(identity)
    number = new_citizen_number()
    await identity.stub.EnrollCitizen(enroll_request(host, number))
    error = await expect_error(
        identity.stub.EnrollCitizen(enroll_request(other_host, number)),
        grpc.StatusCode.ALREADY_EXISTS,
        "CITIZEN_ALREADY_ENROLLED",
    )
    assert number not in (error.details() or "")


async def test_request_id_reused_for_another_citizen(identity: Identity) -> None:
    host = await create_participant(identity)
    request = enroll_request(host)
    await identity.stub.EnrollCitizen(request)
    request.citizen_id = new_citizen_number()
    await expect_error(
        identity.stub.EnrollCitizen(request),
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_REUSED",
    )


@pytest.mark.parametrize(
    "number", ["1101700230705", "0105536000313", "134595159767", "abcdefghijklm", ""]
)
async def test_invalid_citizen_id_is_rejected_without_echoing_it(
    identity: Identity, number: str
) -> None:
    host = await create_participant(identity)
    request = enroll_request(host)
    request.citizen_id = number
    for call in (
        identity.stub.EnrollCitizen(request),
        identity.stub.LookupCitizen(service_pb2.LookupCitizenRequest(citizen_id=number)),
    ):
        error = await expect_error(
            call, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CITIZEN_ID", field="citizen_id"
        )
        info = error_info_of(error)
        assert info is not None
        if number:
            assert number not in (error.details() or "")
            assert not any(number in value for value in info.metadata.values())


@pytest.mark.parametrize("district", ["", "100", "10011", "10a1", "๑๐๐๑"])
async def test_enroll_rejects_bad_district(identity: Identity, district: str) -> None:
    host = await create_participant(identity)
    await expect_error(
        identity.stub.EnrollCitizen(enroll_request(host, district=district)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="home_district_code",
    )


async def test_enroll_checks_the_hosting_participant(identity: Identity) -> None:
    await expect_error(
        identity.stub.EnrollCitizen(enroll_request("no-such-bank")),
        grpc.StatusCode.NOT_FOUND,
        "PARTICIPANT_NOT_FOUND",
        resource="participants/no-such-bank",
    )
    malformed = enroll_request("x")
    malformed.hosting_participant = "bank-a"
    await expect_error(
        identity.stub.EnrollCitizen(malformed),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="hosting_participant",
    )
    suspended = await create_participant(identity)
    await set_state(identity, suspended, "SUSPENDED")
    await expect_error(
        identity.stub.EnrollCitizen(enroll_request(suspended)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
        resource=f"participants/{suspended}",
    )
    treasury = await create_participant(identity, role=resources_pb2.PARTICIPANT_ROLE_TREASURY)
    await expect_error(
        identity.stub.EnrollCitizen(enroll_request(treasury)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="hosting_participant",
    )
    e_wallet = await create_participant(identity, role=resources_pb2.PARTICIPANT_ROLE_E_WALLET)
    assert (await identity.stub.EnrollCitizen(enroll_request(e_wallet))).citizen.name


async def test_replay_succeeds_after_the_host_is_suspended(identity: Identity) -> None:
    host = await create_participant(identity)
    request = enroll_request(host)
    citizen = (await identity.stub.EnrollCitizen(request)).citizen
    await set_state(identity, host, "SUSPENDED")
    assert (await identity.stub.EnrollCitizen(request)).citizen == citizen


async def test_citizen_lookups_that_find_nothing(identity: Identity) -> None:
    await expect_error(
        identity.stub.GetCitizen(service_pb2.GetCitizenRequest(name="citizens/c0000")),
        grpc.StatusCode.NOT_FOUND,
        "CITIZEN_NOT_FOUND",
        resource="citizens/c0000",
    )
    number = new_citizen_number()
    error = await expect_error(
        identity.stub.LookupCitizen(service_pb2.LookupCitizenRequest(citizen_id=number)),
        grpc.StatusCode.NOT_FOUND,
        "CITIZEN_NOT_FOUND",
        field="citizen_id",
    )
    assert number not in (error.details() or "")


async def test_citizen_id_is_never_stored_in_clear(identity: Identity) -> None:
    host = await create_participant(identity)
    number = new_citizen_number()
    await identity.stub.EnrollCitizen(enroll_request(host, number))
    async with identity.db.connect() as conn:
        tables = (
            await conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema='public'")
            )
        ).scalars()
        dumped: list[str] = []
        for table in list(tables):
            rows = await conn.execute(text(f'SELECT t::text FROM "{table}" AS t'))  # noqa: S608
            dumped.extend(rows.scalars())
    assert any(host in row for row in dumped)  # the dump does hold the citizens' rows
    assert not any(number in row for row in dumped)


# --- merchants ------------------------------------------------------------------------


async def test_create_merchant_then_get(identity: Identity) -> None:
    host = await create_participant(identity)
    request = merchant_request(host, district_code="5001")
    merchant = (await identity.stub.CreateMerchant(request)).merchant
    assert merchant.name.startswith("merchants/m")
    assert len(merchant.name.removeprefix("merchants/")) == 21
    assert merchant.tax_id == request.merchant.tax_id
    assert merchant.display_name == "ร้านป้าแดง"
    assert merchant.district_code == "5001"
    assert merchant.size_class == SMALL
    assert merchant.hosting_participant == f"participants/{host}"

    assert (await identity.stub.CreateMerchant(request)).merchant == merchant
    fetched = await identity.stub.GetMerchant(service_pb2.GetMerchantRequest(name=merchant.name))
    assert fetched.merchant == merchant


async def test_same_tax_id_under_another_request_already_exists(identity: Identity) -> None:
    host = await create_participant(identity)
    first = merchant_request(host)
    merchant = (await identity.stub.CreateMerchant(first)).merchant
    second = merchant_request(host, tax_id=first.merchant.tax_id)
    await expect_error(
        identity.stub.CreateMerchant(second),
        grpc.StatusCode.ALREADY_EXISTS,
        "MERCHANT_ALREADY_EXISTS",
        resource=merchant.name,
    )


async def test_request_id_reused_for_another_merchant(identity: Identity) -> None:
    host = await create_participant(identity)
    request = merchant_request(host)
    await identity.stub.CreateMerchant(request)
    request.merchant.display_name = "Another shop"
    await expect_error(
        identity.stub.CreateMerchant(request),
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_REUSED",
    )


@pytest.mark.parametrize("tax_id", ["1345951597671", "0105536000314", "010553600031", ""])
async def test_create_merchant_rejects_bad_tax_id(identity: Identity, tax_id: str) -> None:
    host = await create_participant(identity)
    await expect_error(
        identity.stub.CreateMerchant(merchant_request(host, tax_id=tax_id)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_TAX_ID",
        field="merchant.tax_id",
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"district_code": "101"}, "merchant.district_code"),
        ({"size_class": party_pb2.MERCHANT_SIZE_CLASS_UNSPECIFIED}, "merchant.size_class"),
        ({"size_class": 42}, "merchant.size_class"),
        ({"display_name": ""}, "merchant.display_name"),
        ({"display_name": "   "}, "merchant.display_name"),
        ({"display_name": "x" * 201}, "merchant.display_name"),
        ({"hosting_participant": "bank-a"}, "merchant.hosting_participant"),
    ],
)
async def test_create_merchant_rejects_bad_fields(
    identity: Identity, fields: dict[str, object], field: str
) -> None:
    host = await create_participant(identity)
    await expect_error(
        identity.stub.CreateMerchant(merchant_request(host, **fields)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field=field,
    )


async def test_create_merchant_needs_a_merchant_and_an_active_host(identity: Identity) -> None:
    await expect_error(
        identity.stub.CreateMerchant(service_pb2.CreateMerchantRequest(request_id=new_key())),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="merchant",
    )
    await expect_error(
        identity.stub.CreateMerchant(merchant_request("no-such-bank")),
        grpc.StatusCode.NOT_FOUND,
        "PARTICIPANT_NOT_FOUND",
    )
    closed = await create_participant(identity)
    await set_state(identity, closed, "CLOSED")
    await expect_error(
        identity.stub.CreateMerchant(merchant_request(closed)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
    )


async def test_get_merchant_not_found(identity: Identity) -> None:
    await expect_error(
        identity.stub.GetMerchant(service_pb2.GetMerchantRequest(name="merchants/m0")),
        grpc.StatusCode.NOT_FOUND,
        "MERCHANT_NOT_FOUND",
        resource="merchants/m0",
    )


# --- payment parties ------------------------------------------------------------------


@dataclass
class Parties:
    payer_host: str
    payee_host: str
    payer: str
    payee: str
    payer_number: str
    signer: DevIssuer


@pytest_asyncio.fixture(loop_scope="session")
async def parties(identity: Identity) -> Parties:
    payer_host = await create_participant(identity)
    payee_host = await create_participant(identity)
    signer = await register_payment_key(identity, payer_host)
    request = enroll_request(payer_host, district="1001")
    citizen = (await identity.stub.EnrollCitizen(request)).citizen
    merchant = (
        await identity.stub.CreateMerchant(merchant_request(payee_host, district_code="1002"))
    ).merchant
    return Parties(payer_host, payee_host, citizen.name, merchant.name, request.citizen_id, signer)


def verify(parties: Parties, **overrides: str) -> service_pb2.VerifyPaymentPartiesRequest:
    fields = {
        "acting_participant": f"participants/{parties.payer_host}",
        "payer": parties.payer,
        "payee": parties.payee,
    }
    fields.update(overrides)
    return service_pb2.VerifyPaymentPartiesRequest(
        acting_participant=fields["acting_participant"],
        payer=fields["payer"],
        payee=fields["payee"],
        payer_authorization=authorise(parties.signer, parties.payer_number, fields["payee"]),
        amount=thb(PRICE),
    )


async def test_verify_payment_parties_returns_the_facts(
    identity: Identity, parties: Parties
) -> None:
    response = await identity.stub.VerifyPaymentParties(verify(parties))
    today = datetime.now(UTC).astimezone(THAILAND).date()
    assert response.payer == party_pb2.PartyFacts(
        party=parties.payer,
        kind=party_pb2.PARTY_KIND_CITIZEN,
        hosting_participant=f"participants/{parties.payer_host}",
        district_code="1001",
        age_years=age_on(date.fromisoformat(ADULT_BIRTH_DATE), today),
        identity_verified=True,
        authentication_level="2.1",
    )
    assert response.payee == party_pb2.PartyFacts(
        party=parties.payee,
        kind=party_pb2.PARTY_KIND_MERCHANT,
        hosting_participant=f"participants/{parties.payee_host}",
        district_code="1002",
        size_class=SMALL,
        category="groceries",
        sells_in_person=True,
    )


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"acting_participant": "bank-a"}, "acting_participant"),
        ({"payer": "merchants/m1"}, "payer"),
        ({"payer": ""}, "payer"),
        ({"payee": "citizens/c1"}, "payee"),
    ],
)
async def test_verify_payment_parties_rejects_bad_names(
    identity: Identity, parties: Parties, override: dict[str, str], field: str
) -> None:
    await expect_error(
        identity.stub.VerifyPaymentParties(verify(parties, **override)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field=field,
    )


async def test_verify_payment_parties_refusals(identity: Identity, parties: Parties) -> None:
    await expect_error(
        identity.stub.VerifyPaymentParties(
            verify(parties, acting_participant="participants/ghost")
        ),
        grpc.StatusCode.NOT_FOUND,
        "PARTICIPANT_NOT_FOUND",
        resource="participants/ghost",
    )
    await expect_error(
        identity.stub.VerifyPaymentParties(verify(parties, payer="citizens/c404")),
        grpc.StatusCode.NOT_FOUND,
        "CITIZEN_NOT_FOUND",
        resource="citizens/c404",
    )
    await expect_error(
        identity.stub.VerifyPaymentParties(
            verify(parties, acting_participant=f"participants/{parties.payee_host}")
        ),
        grpc.StatusCode.NOT_FOUND,
        "CITIZEN_NOT_FOUND",
        resource=parties.payer,
    )
    await expect_error(
        identity.stub.VerifyPaymentParties(verify(parties, payee="merchants/m404")),
        grpc.StatusCode.NOT_FOUND,
        "MERCHANT_NOT_FOUND",
        resource="merchants/m404",
    )
    await set_state(identity, parties.payee_host, "SUSPENDED")
    await expect_error(
        identity.stub.VerifyPaymentParties(verify(parties)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
        resource=f"participants/{parties.payee_host}",
    )
    await set_state(identity, parties.payee_host, "ACTIVE")
    await set_state(identity, parties.payer_host, "SUSPENDED")
    await expect_error(
        identity.stub.VerifyPaymentParties(verify(parties)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
        resource=f"participants/{parties.payer_host}",
    )


# --- capabilities -----------------------------------------------------------------------


async def _participant(
    identity: Identity,
    role: resources_pb2.ParticipantRole.ValueType,
    capabilities: list[resources_pb2.ParticipantCapability.ValueType],
) -> resources_pb2.Participant:
    reply = await identity.stub.CreateParticipant(
        service_pb2.CreateParticipantRequest(
            request_id=new_key(),
            participant_id=new_participant_id(),
            participant=resources_pb2.Participant(
                display_name="P", role=role, capabilities=capabilities
            ),
        )
    )
    return reply.participant


async def test_an_acquirer_hosts_merchants_but_not_citizens(identity: Identity) -> None:
    acquirer = await _participant(identity, BANK, [resources_pb2.PARTICIPANT_CAPABILITY_ACQUIRER])
    assert list(acquirer.capabilities) == [resources_pb2.PARTICIPANT_CAPABILITY_ACQUIRER]
    host = acquirer.name.removeprefix("participants/")
    await identity.stub.CreateMerchant(merchant_request(host))
    await expect_error(
        identity.stub.EnrollCitizen(enroll_request(host)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="hosting_participant",
        capability="PAYER_BANK",
    )


async def test_a_bank_does_both_unless_told_and_a_treasury_neither(identity: Identity) -> None:
    bank = await _participant(identity, BANK, [])
    assert set(bank.capabilities) == {
        resources_pb2.PARTICIPANT_CAPABILITY_PAYER_BANK,
        resources_pb2.PARTICIPANT_CAPABILITY_ACQUIRER,
    }
    await expect_error(
        _participant(
            identity,
            resources_pb2.PARTICIPANT_ROLE_TREASURY,
            [resources_pb2.PARTICIPANT_CAPABILITY_PAYER_BANK],
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="participant.capabilities",
    )

"""The operators' audit trail, through the real server and database: every operator change and
every export of personal data writes exactly one event, in the change's transaction, naming
the operator; a replay or a refused change writes none; events hold no personal data; and
auditors read the trail with ListAuditEvents."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest_asyncio
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text

from openloop.identity.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_identity import access
from services.identity.tests.identity_helpers import (
    Identity,
    audit_count,
    audit_rows,
    create_participant,
    enroll_request,
    expect_error,
    merchant_request,
    new_citizen_number,
    new_key,
    new_participant_id,
    operator_token,
    set_state,
)

ALICE = "operator:alice"
"""The actor of every change ``Identity.stub`` makes."""
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bare(identity: Identity) -> AsyncIterator[service_pb2_grpc.IdentityServiceStub]:
    async with grpc.aio.insecure_channel(identity.target) as channel:
        yield service_pb2_grpc.IdentityServiceStub(channel)


def _as(role: str, subject: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {operator_token(role, subject=subject)()}")]


def _one(rows: list[object], action: str) -> object:
    matching = [row for row in rows if getattr(row, "action", None) == action]
    assert len(matching) == 1, rows
    return matching[0]


async def test_a_participants_life_is_audited_once_per_change(
    identity: Identity, bare: service_pb2_grpc.IdentityServiceStub
) -> None:
    participant_id = new_participant_id()
    name = f"participants/{participant_id}"
    request = service_pb2.CreateParticipantRequest(
        request_id=new_key(),
        participant_id=participant_id,
        participant=resources_pb2.Participant(
            display_name="Bank", role=resources_pb2.PARTICIPANT_ROLE_BANK
        ),
    )
    await identity.stub.CreateParticipant(request)
    await identity.stub.CreateParticipant(request)  # a replay: no second event
    (created,) = await audit_rows(identity, name)
    assert (created.actor, created.role, created.action) == (
        ALICE,
        "identity-operator",
        "CREATE_PARTICIPANT",
    )
    assert created.request_id == request.request_id
    assert created.acting_participant_id is None

    # Another operator suspends it; suspending a suspended participant changes nothing.
    bob = _as(access.Role.OPERATOR, "bob")
    await bare.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name), metadata=bob)
    await bare.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name), metadata=bob)
    await identity.stub.ReactivateParticipant(service_pb2.ReactivateParticipantRequest(name=name))
    await identity.stub.ReactivateParticipant(service_pb2.ReactivateParticipantRequest(name=name))

    events = await audit_rows(identity, name)
    assert [(e.action, e.actor) for e in events] == [
        ("CREATE_PARTICIPANT", ALICE),
        ("SUSPEND_PARTICIPANT", "operator:bob"),
        ("REACTIVATE_PARTICIPANT", ALICE),
    ]
    assert events[1].details == {"from_state": "ACTIVE", "to_state": "SUSPENDED"}


async def test_a_refused_change_writes_no_event(identity: Identity) -> None:
    bank = await create_participant(identity)
    name = f"participants/{bank}"
    before = await audit_count(identity)
    # ACTIVE cannot close; this server knows no settlement, so a SUSPENDED one cannot either.
    await expect_error(
        identity.stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_STATE_CONFLICT",
    )
    await set_state(identity, bank, "SUSPENDED")
    await expect_error(
        identity.stub.CloseParticipant(service_pb2.CloseParticipantRequest(name=name)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_HAS_UNSETTLED_POSITION",
    )
    # A merchant and a citizen for a suspended host, an unknown participant's credential.
    await expect_error(
        identity.stub.CreateMerchant(merchant_request(bank)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
    )
    await expect_error(
        identity.stub.EnrollCitizen(enroll_request(bank)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
    )
    await expect_error(
        identity.stub.SuspendParticipant(
            service_pb2.SuspendParticipantRequest(name="participants/nobody-here")
        ),
        grpc.StatusCode.NOT_FOUND,
        "PARTICIPANT_NOT_FOUND",
    )
    # Refused before any check of the request: an auditor may not suspend.
    auditor = _as(access.Role.AUDITOR, "carol")
    async with grpc.aio.insecure_channel(identity.target) as channel:
        await expect_error(
            service_pb2_grpc.IdentityServiceStub(channel).SuspendParticipant(
                service_pb2.SuspendParticipantRequest(name=name), metadata=auditor
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "OPERATOR_NOT_AUTHORISED",
        )
    assert await audit_count(identity) == before


def _assertion_key_request(bank: str) -> service_pb2.CreateParticipantCredentialRequest:
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    end.FromDatetime(datetime.now(UTC) + timedelta(days=30))
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(b"k" * 32).decode()}
    return service_pb2.CreateParticipantCredentialRequest(
        parent=f"participants/{bank}",
        request_id=new_key(),
        credential=resources_pb2.ParticipantCredential(
            kind=resources_pb2.CREDENTIAL_KIND_ASSERTION_KEY,
            public_jwk=json.dumps({**jwk, "kid": f"{bank}-audit-1"}),
            not_before=start,
            not_after=end,
        ),
    )


async def test_credentials_added_and_revoked_are_audited(identity: Identity) -> None:
    bank = await create_participant(identity)
    request = _assertion_key_request(bank)
    credential = (await identity.stub.CreateParticipantCredential(request)).credential
    await identity.stub.CreateParticipantCredential(request)  # replay
    revoke = service_pb2.RevokeParticipantCredentialRequest(name=credential.name)
    await identity.stub.RevokeParticipantCredential(revoke)
    await identity.stub.RevokeParticipantCredential(revoke)  # already revoked: nothing new

    events = await audit_rows(identity, credential.name)
    assert [(e.action, e.actor) for e in events] == [
        ("CREATE_CREDENTIAL", ALICE),
        ("REVOKE_CREDENTIAL", ALICE),
    ]
    assert events[0].request_id == request.request_id
    assert events[0].details == {"kind": "ASSERTION_KEY"}


async def test_enrolment_and_merchants_are_audited_once(identity: Identity) -> None:
    bank = await create_participant(identity)
    enrol = enroll_request(bank)
    citizen = (await identity.stub.EnrollCitizen(enrol)).citizen
    await identity.stub.EnrollCitizen(enrol)  # replay
    (enrolled,) = await audit_rows(identity, citizen.name)
    assert (enrolled.action, enrolled.actor, enrolled.request_id) == (
        "ENROLL_CITIZEN",
        ALICE,
        enrol.request_id,
    )
    assert enrolled.details == {"hosting_participant": f"participants/{bank}"}

    create = merchant_request(bank)
    merchant = (await identity.stub.CreateMerchant(create)).merchant
    await identity.stub.CreateMerchant(create)  # replay
    (created,) = await audit_rows(identity, merchant.name)
    assert (created.action, created.actor, created.request_id) == (
        "CREATE_MERCHANT",
        ALICE,
        create.request_id,
    )


def _record(host: str, number: str) -> service_pb2.CitizenRecord:
    return service_pb2.CitizenRecord(
        request_id=new_key(),
        citizen_id=number,
        birth_date="1975-02-03",
        full_name="สมหญิง รักดี",
        address="9 Nimmanhaemin Road, Mueang Chiang Mai",
        home_district_code="5001",
        hosting_participant=f"participants/{host}",
        eligibility=resources_pb2.EligibilityAttestations(income_within_limit=True),
    )


async def _import(
    identity: Identity, batches: list[list[service_pb2.CitizenRecord]]
) -> list[service_pb2.ImportCitizensResponse]:
    async def requests() -> AsyncIterator[service_pb2.ImportCitizensRequest]:
        for batch in batches:
            yield service_pb2.ImportCitizensRequest(citizens=batch)

    return [reply async for reply in identity.stub.ImportCitizens(requests())]


async def test_an_import_writes_one_event_per_batch_that_enrolled_anyone(
    identity: Identity,
) -> None:
    bank = await create_participant(identity)
    numbers = [new_citizen_number() for _ in range(3)]
    first = [_record(bank, numbers[0]), _record(bank, numbers[1])]
    second = [_record(bank, numbers[2])]
    before = await audit_rows(identity, "citizens")

    replies = await _import(identity, [first, second])
    await _import(identity, [first, second])  # a rerun: every row a replay
    await _import(identity, [[_record("nobody-here", new_citizen_number())]])  # all refused

    events = (await audit_rows(identity, "citizens"))[len(before) :]
    assert [(e.action, e.actor) for e in events] == [("IMPORT_CITIZENS", ALICE)] * 2
    # The batches of one stream are written concurrently, so their events are in commit
    # order, not stream order: match each event to the batch that enrolled its citizens.
    enrolled = [[r.citizen for r in reply.results] for reply in replies]
    by_batch = sorted(events, key=lambda e: enrolled.index(e.details["citizens"]))
    assert [e.details["citizens"] for e in by_batch] == enrolled
    assert [e.details["enrolled"] for e in by_batch] == [2, 1]
    assert all(e.details["hosting_participants"] == [f"participants/{bank}"] for e in events)
    rows_text = " ".join(str(e.details) for e in events)
    assert not any(number in rows_text for number in numbers)


async def test_exports_and_erasures_say_who_opened_whose_data_for_which_bank(
    identity: Identity, bare: service_pb2_grpc.IdentityServiceStub
) -> None:
    bank = await create_participant(identity)
    number = new_citizen_number()
    enrol = enroll_request(bank, number, birth_date="1969-08-21")
    citizen = (await identity.stub.EnrollCitizen(enrol)).citizen.name
    acting = f"participants/{bank}"
    export = service_pb2.ExportCitizenDataRequest(name=citizen, acting_participant=acting)

    exported = await bare.ExportCitizenData(export, metadata=_as(access.Role.OPERATOR, "dan"))
    assert exported.personal_data.full_name == enrol.full_name
    await identity.stub.ExportCitizenData(export)  # every read is recorded, not only the first
    stranger = await create_participant(identity)
    await expect_error(
        identity.stub.ExportCitizenData(
            service_pb2.ExportCitizenDataRequest(
                name=citizen, acting_participant=f"participants/{stranger}"
            )
        ),
        grpc.StatusCode.NOT_FOUND,
        "CITIZEN_NOT_FOUND",
    )
    erase = service_pb2.EraseCitizenDataRequest(name=citizen, acting_participant=acting)
    await identity.stub.EraseCitizenData(erase)
    await identity.stub.EraseCitizenData(erase)  # erased already: nothing happens
    await identity.stub.ExportCitizenData(export)  # after erasure: nothing opened

    events = await audit_rows(identity, citizen)
    assert [(e.action, e.actor, e.acting_participant_id) for e in events] == [
        ("ENROLL_CITIZEN", ALICE, None),
        ("EXPORT_CITIZEN_DATA", "operator:dan", bank),
        ("EXPORT_CITIZEN_DATA", ALICE, bank),
        ("ERASE_CITIZEN_DATA", ALICE, bank),
        ("EXPORT_CITIZEN_DATA", ALICE, bank),
    ]
    assert [e.details.get("personal_data_returned") for e in events[1:]] == [
        True,
        True,
        None,
        False,
    ]

    # Nothing of the citizen's personal data, anywhere in the trail, in any form.
    async with identity.db.connect() as conn:
        trail = (await conn.execute(text("SELECT CAST(a AS text) FROM audit_events AS a"))).all()
    whole = "\n".join(row[0] for row in trail)
    assert citizen in whole
    for personal in (
        number,
        enrol.full_name,
        enrol.birth_date,
        "19690821",
        enrol.address,
        "Ratchadamnoen",
    ):
        assert personal not in whole, personal


async def _all_pages(
    stub: service_pb2_grpc.IdentityServiceStub,
    request: service_pb2.ListAuditEventsRequest,
    metadata: list[tuple[str, str]] | None = None,
) -> list[list[resources_pb2.AuditEvent]]:
    pages: list[list[resources_pb2.AuditEvent]] = []
    while True:
        reply = await stub.ListAuditEvents(request, metadata=metadata)
        pages.append(list(reply.audit_events))
        if not reply.next_page_token:
            return pages
        request.page_token = reply.next_page_token


async def test_an_auditor_pages_through_the_trail_newest_first(
    identity: Identity, bare: service_pb2_grpc.IdentityServiceStub
) -> None:
    bank = await create_participant(identity)
    name = f"participants/{bank}"
    for _ in range(2):
        await identity.stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))
        await identity.stub.ReactivateParticipant(
            service_pb2.ReactivateParticipantRequest(name=name)
        )
    auditor = _as(access.Role.AUDITOR, "erin")

    pages = await _all_pages(
        bare, service_pb2.ListAuditEventsRequest(resource=name, page_size=2), auditor
    )
    assert [len(page) for page in pages] == [2, 2, 1]
    events = [event for page in pages for event in page]
    assert [e.action for e in events] == [
        "REACTIVATE_PARTICIPANT",
        "SUSPEND_PARTICIPANT",
        "REACTIVATE_PARTICIPANT",
        "SUSPEND_PARTICIPANT",
        "CREATE_PARTICIPANT",
    ]
    numbers = [int(e.name.removeprefix("auditEvents/")) for e in events]
    assert numbers == sorted(numbers, reverse=True)
    assert all(e.actor == ALICE and e.resource == name for e in events)
    assert MessageToDict(events[0].details) == {
        "from_state": "SUSPENDED",
        "to_state": "ACTIVE",
    }
    stored = await audit_rows(identity, name)
    assert events[-1].request_id == stored[0].request_id
    assert events[-1].event_time.ToDatetime(UTC) == stored[0].at

    # Filtered by action across resources; the default page holds the newest events.
    suspends = await identity.stub.ListAuditEvents(
        service_pb2.ListAuditEventsRequest(action="SUSPEND_PARTICIPANT")
    )
    assert {e.action for e in suspends.audit_events} == {"SUSPEND_PARTICIPANT"}
    assert suspends.audit_events[0].name == events[1].name
    everything = await identity.stub.ListAuditEvents(service_pb2.ListAuditEventsRequest())
    assert everything.audit_events[0].name == events[0].name


async def test_bad_page_tokens_and_filters_are_invalid_arguments(identity: Identity) -> None:
    bank = await create_participant(identity)
    name = f"participants/{bank}"
    await identity.stub.SuspendParticipant(service_pb2.SuspendParticipantRequest(name=name))
    first = await identity.stub.ListAuditEvents(
        service_pb2.ListAuditEventsRequest(resource=name, page_size=1)
    )
    token = first.next_page_token
    assert token

    def forged(payload: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()

    for request in (
        service_pb2.ListAuditEventsRequest(page_token="not a token"),
        service_pb2.ListAuditEventsRequest(page_token=token),  # issued for another filter
        service_pb2.ListAuditEventsRequest(resource="participants/other", page_token=token),
        service_pb2.ListAuditEventsRequest(
            resource=name, action="SUSPEND_PARTICIPANT", page_token=token
        ),
        service_pb2.ListAuditEventsRequest(
            resource=name, page_token=forged({"a": -1, "s": [name, ""]})
        ),
        service_pb2.ListAuditEventsRequest(
            resource=name, page_token=forged({"a": True, "s": [name, ""]})
        ),
        service_pb2.ListAuditEventsRequest(resource=name, page_token=forged([1, 2])),
        service_pb2.ListAuditEventsRequest(resource=name, page_token="A" * 2000),
    ):
        await expect_error(
            identity.stub.ListAuditEvents(request), INVALID, "INVALID_FIELD", field="page_token"
        )
    await expect_error(
        identity.stub.ListAuditEvents(service_pb2.ListAuditEventsRequest(page_size=-1)),
        INVALID,
        "INVALID_FIELD",
        field="page_size",
    )
    await expect_error(
        identity.stub.ListAuditEvents(service_pb2.ListAuditEventsRequest(action="DELETE")),
        INVALID,
        "INVALID_FIELD",
        field="action",
    )
    # The token still works with the filter it was made for.
    second = await identity.stub.ListAuditEvents(
        service_pb2.ListAuditEventsRequest(resource=name, page_size=1, page_token=token)
    )
    assert [e.action for e in second.audit_events] == ["CREATE_PARTICIPANT"]
    assert second.next_page_token == ""


async def test_only_operators_and_auditors_read_the_trail(
    bare: service_pb2_grpc.IdentityServiceStub,
) -> None:
    request = service_pb2.ListAuditEventsRequest(page_size=1)
    for role in (access.Role.AUDITOR, access.Role.OPERATOR):
        await bare.ListAuditEvents(request, metadata=_as(role, "frank"))
    await expect_error(
        bare.ListAuditEvents(request, metadata=_as("rules-operator", "frank")),
        grpc.StatusCode.PERMISSION_DENIED,
        "OPERATOR_NOT_AUTHORISED",
    )
    await expect_error(
        bare.ListAuditEvents(request),
        grpc.StatusCode.UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
        token_reason="TOKEN_MISSING",
    )

"""Bulk enrolment from the registry (ImportCitizens) against the real database: per-row
answers in order, only valid rows written, reruns idempotent, personal data sealed as
EnrollCitizen seals it, and the import tool end to end with its error file and exit code.

Until the servicer serves ImportCitizens, the tool is driven through an in-process stand-in
for the stub that calls :class:`CitizenImport` directly; the tests through gRPC run once
``IdentityServicer`` implements the method.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity import import_cli
from openloop_identity.bulk import MAX_BATCH, CitizenImport
from openloop_identity.config import IdentitySettings
from openloop_identity.domain.districts import load_districts
from openloop_identity.enrolment import personal_data_context
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.protection import KeyRing, envelope
from openloop_identity.requests import THAILAND
from openloop_identity.servicer import IdentityServicer
from openloop_identity.tables import aliases, citizens
from openloop_runtime.errors import DomainError
from services.identity.tests.identity_helpers import (
    ADULT_BIRTH_DATE,
    OPERATOR,
    OPERATOR_KID,
    OPERATOR_PRIVATE_PEM,
    Identity,
    create_participant,
    expect_error,
    new_citizen_number,
    new_key,
    set_state,
)

NAME = "สมหญิง รักดี"
ADDRESS = "9 Nimmanhaemin Road, Mueang Chiang Mai"
WIRED = "ImportCitizens" in IdentityServicer.__dict__
needs_grpc = pytest.mark.skipif(not WIRED, reason="IdentityServicer does not serve it yet")


def _settings() -> IdentitySettings:
    """The server's keys: the fixture's server reads the same defaults and environment."""
    return IdentitySettings(port=0, database_url="postgresql+asyncpg://unused/unused")


def _importer(identity: Identity) -> CitizenImport:
    settings = _settings()
    return CitizenImport(
        identity.db,
        tokenizer=CitizenIdTokenizer(settings.citizen_id_hmac_key),
        districts=load_districts(),
        keyring=KeyRing.parse(settings.pii_keyring),
    )


def _minor_birth_date() -> str:
    today = datetime.now(THAILAND).date()
    return date(today.year - 12, 1, 1).isoformat()


def _record(host: str, number: str | None = None, **fields: object) -> service_pb2.CitizenRecord:
    record = service_pb2.CitizenRecord(
        request_id=f"test-{new_key()}",
        citizen_id=number or new_citizen_number(),
        birth_date=ADULT_BIRTH_DATE,
        full_name=NAME,
        address=ADDRESS,
        home_district_code="5001",
        hosting_participant=f"participants/{host}",
        eligibility=resources_pb2.EligibilityAttestations(income_within_limit=True),
    )
    for name, value in fields.items():
        if isinstance(value, resources_pb2.GuardianConsent):
            record.guardian_consent.CopyFrom(value)
        else:
            setattr(record, name, value)
    return record


def _bad_check_digit() -> str:
    number = new_citizen_number()
    return number[:12] + str((int(number[12]) + 1) % 10)


def _consent() -> resources_pb2.GuardianConsent:
    consent = resources_pb2.GuardianConsent(consent_reference="consent-778")
    consent.consent_time.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    return consent


async def _count(identity: Identity) -> int:
    async with identity.db.connect() as conn:
        found: int = (await conn.execute(select(func.count()).select_from(citizens))).scalar_one()
    return found


async def _stored_request_ids(identity: Identity, request_ids: list[str]) -> set[str]:
    async with identity.db.connect() as conn:
        rows = await conn.execute(
            select(citizens.c.request_id).where(citizens.c.request_id.in_(request_ids))
        )
    return {row.request_id for row in rows}


def _outcome(result: service_pb2.CitizenImportResult) -> tuple[str, str]:
    return (result.error_reason, result.error_field) if result.error_reason else ("OK", "")


async def test_a_mixed_batch_is_answered_row_by_row_and_only_valid_rows_are_written(
    identity: Identity,
) -> None:
    host = await create_participant(identity)
    other_host = await create_participant(identity)
    twice = new_citizen_number()
    batch = [
        _record(host),
        _record(host, _bad_check_digit()),
        _record(host, home_district_code="9999"),
        _record(host, birth_date=_minor_birth_date()),
        _record(host, birth_date=_minor_birth_date(), guardian_consent=_consent()),
        _record(host, twice),
        _record(other_host, twice),
        _record("bank-nobody"),
        _record(other_host, home_district_code="1001"),
        _record(host, birth_date="2999-01-01"),
        _record(host, full_name=""),
    ]
    before = await _count(identity)

    results = await _importer(identity).import_batch(batch, OPERATOR)

    assert [r.request_id for r in results] == [r.request_id for r in batch]
    assert [_outcome(r) for r in results] == [
        ("OK", ""),
        ("INVALID_CITIZEN_ID", "citizen_id"),
        ("UNKNOWN_DISTRICT", "home_district_code"),
        ("GUARDIAN_CONSENT_REQUIRED", "guardian_consent"),
        ("OK", ""),
        ("OK", ""),
        ("CITIZEN_ALREADY_ENROLLED", "citizen_id"),
        ("PARTICIPANT_NOT_FOUND", "hosting_participant"),
        ("OK", ""),
        ("INVALID_FIELD", "birth_date"),
        ("INVALID_FIELD", "full_name"),
    ]
    accepted = [r.request_id for r in results if not r.error_reason]
    refused = [r.request_id for r in results if r.error_reason]
    assert all(r.citizen.startswith("citizens/c") for r in results if not r.error_reason)
    assert not any(r.citizen for r in results if r.error_reason)
    assert await _count(identity) == before + len(accepted)
    assert await _stored_request_ids(identity, refused) == set()
    assert await _stored_request_ids(identity, accepted) == set(accepted)
    for record, result in zip(batch, results, strict=True):
        assert record.citizen_id not in result.error_message
        assert NAME not in result.error_message


async def test_a_rerun_answers_with_the_same_citizens_and_writes_nothing(
    identity: Identity,
) -> None:
    host = await create_participant(identity)
    batch = [_record(host) for _ in range(5)] + [_record(host, _bad_check_digit())]
    importer = _importer(identity)
    first = await importer.import_batch(batch, OPERATOR)
    count = await _count(identity)

    again = await importer.import_batch(batch, OPERATOR)

    assert again == first
    assert await _count(identity) == count


async def test_a_citizen_enrolled_by_an_earlier_batch_is_refused_under_a_new_request_id(
    identity: Identity,
) -> None:
    host = await create_participant(identity)
    number = new_citizen_number()
    importer = _importer(identity)
    (first,) = await importer.import_batch([_record(host, number)], OPERATOR)
    assert first.citizen

    (second,) = await importer.import_batch([_record(host, number)], OPERATOR)

    assert _outcome(second) == ("CITIZEN_ALREADY_ENROLLED", "citizen_id")


async def test_a_reused_request_id_with_other_content_is_refused(identity: Identity) -> None:
    host = await create_participant(identity)
    importer = _importer(identity)
    original = _record(host)
    (first,) = await importer.import_batch([original], OPERATOR)
    changed = _record(host, request_id=original.request_id)

    (refused,) = await importer.import_batch([changed], OPERATOR)
    (again,) = await importer.import_batch([original], OPERATOR)

    assert _outcome(refused) == ("IDEMPOTENCY_KEY_REUSED", "request_id")
    assert again == first


async def test_the_same_row_twice_in_one_batch_gets_one_citizen(identity: Identity) -> None:
    host = await create_participant(identity)
    row = _record(host)
    before = await _count(identity)

    first, second = await _importer(identity).import_batch([row, row], OPERATOR)

    assert first.citizen
    assert first == second
    assert await _count(identity) == before + 1


async def test_an_inactive_host_is_refused(identity: Identity) -> None:
    host = await create_participant(identity)
    await set_state(identity, host, "SUSPENDED")

    (result,) = await _importer(identity).import_batch([_record(host)], OPERATOR)

    assert _outcome(result) == ("PARTICIPANT_NOT_ACTIVE", "hosting_participant")


async def test_personal_data_is_sealed_like_enrolment_and_the_alias_is_claimed(
    identity: Identity,
) -> None:
    host = await create_participant(identity)
    record = _record(host, birth_date=_minor_birth_date(), guardian_consent=_consent())
    (result,) = await _importer(identity).import_batch([record], OPERATOR)
    citizen_id = result.citizen.removeprefix("citizens/")

    async with identity.db.connect() as conn:
        row = (
            await conn.execute(select(citizens).where(citizens.c.citizen_id == citizen_id))
        ).one()
        alias = (await conn.execute(select(aliases).where(aliases.c.party_id == citizen_id))).one()
    stored = bytes(row.personal_data)
    for secret in (NAME, record.citizen_id, record.birth_date, ADDRESS):
        assert secret.encode() not in stored
    keyring = KeyRing.parse(_settings().pii_keyring)
    opened = envelope.open(stored, keyring=keyring, context=personal_data_context(citizen_id))
    assert opened == {"full_name": NAME, "birth_date": record.birth_date, "address": ADDRESS}
    with pytest.raises(envelope.EnvelopeError):
        envelope.open(
            stored, keyring=keyring, context=personal_data_context("c0000000000000000000")
        )
    assert row.personal_data_kek == keyring.active_id
    assert row.identity_assurance_level is None
    assert row.assertion_digest is None
    assert row.home_district_code == "5001"
    assert row.income_within_limit
    assert not row.deposits_within_limit
    assert row.guardian_consent_reference == "consent-778"
    assert (alias.alias_kind, alias.party_kind) == ("CITIZEN_ID", "CITIZEN")
    assert alias.alias_key == row.citizen_token
    # The server finds the imported citizen by its number: the same keyed token.
    found = await identity.stub.LookupCitizen(
        service_pb2.LookupCitizenRequest(citizen_id=record.citizen_id)
    )
    assert found.citizen.name == result.citizen
    assert not found.citizen.identity_assurance_level


async def test_an_oversized_batch_is_refused_whole(identity: Identity) -> None:
    host = await create_participant(identity)
    batch = [_record(host, "1101700203451")] * (MAX_BATCH + 1)
    before = await _count(identity)

    with pytest.raises(DomainError) as caught:
        await _importer(identity).import_batch(batch, OPERATOR)

    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "BATCH_TOO_LARGE"
    assert await _count(identity) == before


async def _stream(
    batches: Sequence[Sequence[service_pb2.CitizenRecord]],
) -> AsyncIterator[Sequence[service_pb2.CitizenRecord]]:
    for batch in batches:
        yield batch


async def test_a_stream_answers_batches_in_order_and_stops_at_an_oversized_one(
    identity: Identity,
) -> None:
    host = await create_participant(identity)
    batches = [[_record(host) for _ in range(size)] for size in (30, 1, 200, 7)]
    oversized = [_record(host)] * (MAX_BATCH + 1)
    answered: list[list[str]] = []

    async def consume() -> None:
        async for results in _importer(identity).import_stream(
            _stream([*batches, oversized]), OPERATOR
        ):
            answered.append([r.request_id for r in results if r.citizen])

    with pytest.raises(DomainError) as caught:
        await consume()

    assert caught.value.reason == "BATCH_TOO_LARGE"
    assert answered == [[r.request_id for r in batch] for batch in batches]


class _DirectStub:
    """The tool's view of the stub, served in process by :class:`CitizenImport`."""

    def __init__(self, importer: CitizenImport) -> None:
        self._importer = importer

    async def ImportCitizens(  # noqa: N802 - the gRPC method's name
        self, request_iterator: AsyncIterator[service_pb2.ImportCitizensRequest]
    ) -> AsyncIterator[service_pb2.ImportCitizensResponse]:
        async def batches() -> AsyncIterator[Sequence[service_pb2.CitizenRecord]]:
            async for request in request_iterator:
                yield request.citizens

        async for results in self._importer.import_stream(batches(), OPERATOR):
            yield service_pb2.ImportCitizensResponse(results=results)


def _csv(host: str, rows: int, *, bad: bool = True) -> tuple[str, list[str]]:
    """A registry extract of ``rows`` rows, rows 3, 5 and 6 bad if ``bad``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(import_cli.HEADER)
    numbers = [new_citizen_number() for _ in range(rows)]
    consent_time = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    for position, number in enumerate(numbers, start=1):
        birth, reference, given = ADULT_BIRTH_DATE, "", ""
        if position == 4:
            birth, reference, given = _minor_birth_date(), "consent-1", consent_time
        district = "9999" if bad and position == 3 else "1001"
        flag = "maybe" if bad and position == 5 else "true"
        citizen = _bad_check_digit() if bad and position == 6 else number
        host_name = f"participants/{host}"
        flags = (flag, "false", "no", "1")
        writer.writerow(
            (citizen, birth, NAME, ADDRESS, district, host_name, *flags, reference, given)
        )
    return out.getvalue(), numbers


async def _run_tool(stub: import_cli.ImportStub, text: str, job: str) -> tuple[int, str]:
    errors = io.StringIO()
    progress = await import_cli.import_file(
        stub, io.StringIO(text), errors, job=job, batch_size=4, report=False
    )
    return import_cli.exit_status(progress), errors.getvalue()


async def _check_tool(identity: Identity, stub: import_cli.ImportStub) -> None:
    host = await create_participant(identity)
    text, numbers = _csv(host, 11)
    job = f"job-{new_key()[:8]}"
    before = await _count(identity)

    status, error_file = await _run_tool(stub, text, job)

    assert status == import_cli.EXIT_SOME_REFUSED
    # Rows the tool cannot read are written at once, the server's refusals as they come.
    refused = sorted(csv.DictReader(io.StringIO(error_file)), key=lambda r: int(r["row_number"]))
    assert [(r["row_number"], r["request_id"], r["reason"], r["field"]) for r in refused] == [
        ("3", f"{job}:3", "UNKNOWN_DISTRICT", "home_district_code"),
        ("5", f"{job}:5", "INVALID_FIELD", "income_within_limit"),
        ("6", f"{job}:6", "INVALID_CITIZEN_ID", "citizen_id"),
    ]
    for number in numbers:
        assert number not in error_file
    assert NAME not in error_file
    assert await _count(identity) == before + 8
    enrolled = await _stored_request_ids(identity, [f"{job}:{n}" for n in range(1, 12)])
    assert enrolled == {f"{job}:{n}" for n in (1, 2, 4, 7, 8, 9, 10, 11)}

    status, error_file = await _run_tool(stub, text, job)

    assert status == import_cli.EXIT_SOME_REFUSED
    assert len(list(csv.DictReader(io.StringIO(error_file)))) == 3
    assert await _count(identity) == before + 8

    good, _ = _csv(host, 9, bad=False)
    status, error_file = await _run_tool(stub, good, f"{job}-good")
    assert status == import_cli.EXIT_ALL_ENROLLED
    assert list(csv.DictReader(io.StringIO(error_file))) == []


async def test_the_tool_enrols_a_file_reports_refused_rows_and_reruns_idempotently(
    identity: Identity,
) -> None:
    await _check_tool(identity, _DirectStub(_importer(identity)))


def test_the_tool_exits_2_when_it_cannot_finish(tmp_path: Path) -> None:
    folder = tmp_path
    source = folder / "cohort.csv"
    source.write_text("citizen_id,birth_date\n1101700203451,1980-01-01\n", encoding="utf-8")
    errors = folder / "errors.csv"
    key = folder / "operator.pem"
    key.write_bytes(OPERATOR_PRIVATE_PEM)
    operator = ["--key-file", str(key), "--kid", OPERATOR_KID, "--operator", "alice"]
    args = ["--target", "127.0.0.1:1", "--errors", str(errors), *operator]

    assert import_cli.main([*args, "--file", str(source)]) == import_cli.EXIT_FAILED
    assert import_cli.main([*args, "--file", str(folder / "missing.csv")]) == 2
    assert import_cli.main([*args, "--file", str(source), "--batch", "5001"]) == 2


@needs_grpc
async def test_the_tool_through_the_server(identity: Identity) -> None:
    await _check_tool(identity, identity.stub)


@needs_grpc
async def test_an_oversized_batch_is_invalid_argument_over_grpc(identity: Identity) -> None:
    host = await create_participant(identity)
    request = service_pb2.ImportCitizensRequest(citizens=[_record(host)] * (MAX_BATCH + 1))

    async def requests() -> AsyncIterator[service_pb2.ImportCitizensRequest]:
        yield request

    async def drain() -> None:
        async for _ in identity.stub.ImportCitizens(requests()):
            pass

    await expect_error(drain(), grpc.StatusCode.INVALID_ARGUMENT, "BATCH_TOO_LARGE")

"""Enrolment on an identity assertion, through the real server and database: the token is
verified and spent in the enrolling transaction, personal data is stored sealed, minors need
a guardian's consent, and every refusal leaves nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from openloop.identity.v1 import resources_pb2, service_pb2
from openloop_identity.assertions import DevIssuer
from openloop_identity.config import DEVELOPMENT_PII_KEYRING
from openloop_identity.domain.assurance import IAL
from openloop_identity.enrolment import personal_data_context
from openloop_identity.protection import KeyRing, envelope
from openloop_identity.requests import THAILAND
from openloop_identity.store import replays
from openloop_identity.tables import assertion_replays, citizens
from services.identity.tests.identity_helpers import (
    AUDIENCE,
    ISSUER,
    Identity,
    assertion_for,
    create_participant,
    enroll_request,
    expect_error,
    new_citizen_number,
    set_state,
)

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
REASON = "INVALID_IDENTITY_ASSERTION"


async def _citizen_count(identity: Identity) -> int:
    async with identity.db.connect() as conn:
        count: int = (await conn.execute(select(func.count()).select_from(citizens))).scalar_one()
    return count


async def _enrolled(identity: Identity, number: str) -> bool:
    try:
        await identity.stub.LookupCitizen(service_pb2.LookupCitizenRequest(citizen_id=number))
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return False
    return True


async def test_enrolment_seals_the_personal_data(identity: Identity) -> None:
    host = await create_participant(identity)
    request = enroll_request(host)
    citizen = (await identity.stub.EnrollCitizen(request)).citizen
    assert citizen.identity_assurance_level == "2.3"
    assert citizen.eligibility.income_within_limit
    assert citizen.eligibility.deposits_within_limit
    assert not citizen.eligibility.excluded
    assert not citizen.HasField("guardian_consent")

    citizen_id = citizen.name.removeprefix("citizens/")
    async with identity.db.connect() as conn:
        row = (
            await conn.execute(select(citizens).where(citizens.c.citizen_id == citizen_id))
        ).one()
    stored = bytes(row.personal_data)
    for secret in (request.full_name, request.birth_date, request.address, request.citizen_id):
        assert secret.encode() not in stored
        assert secret not in str(row._mapping)
    opened = envelope.open(
        stored,
        keyring=KeyRing.parse(DEVELOPMENT_PII_KEYRING),
        context=personal_data_context(citizen_id),
    )
    assert opened == {
        "full_name": request.full_name,
        "birth_date": request.birth_date,
        "address": request.address,
    }
    # Bound to its own row: the same bytes do not open as another citizen's.
    with pytest.raises(envelope.EnvelopeError):
        envelope.open(
            stored,
            keyring=KeyRing.parse(DEVELOPMENT_PII_KEYRING),
            context=personal_data_context("c0000000000000000000"),
        )


async def test_a_retry_of_the_same_request_is_answered_without_a_new_token(
    identity: Identity,
) -> None:
    host = await create_participant(identity)
    request = enroll_request(host)
    first = (await identity.stub.EnrollCitizen(request)).citizen
    again = (await identity.stub.EnrollCitizen(request)).citizen
    assert again == first
    # The same request id with another (valid) token is a different request.
    other = service_pb2.EnrollCitizenRequest()
    other.CopyFrom(request)
    other.identity_assertion = assertion_for(request.citizen_id)
    await expect_error(
        identity.stub.EnrollCitizen(other),
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_REUSED",
    )


def _with_assertion(
    request: service_pb2.EnrollCitizenRequest, token: str
) -> service_pb2.EnrollCitizenRequest:
    changed = service_pb2.EnrollCitizenRequest()
    changed.CopyFrom(request)
    changed.identity_assertion = token
    return changed


async def test_refused_assertions_enrol_nobody(identity: Identity) -> None:
    host = await create_participant(identity)
    now = datetime.now(UTC)
    impostor = DevIssuer(ISSUER.issuer, kid=ISSUER.kid)  # same name and kid, other key
    stranger = DevIssuer("https://id.elsewhere.example")
    cases: list[tuple[Callable[[str], str], grpc.StatusCode, str]] = [
        (
            lambda n: impostor.id_token(audience=AUDIENCE, pid=n, now=now),
            UNAUTHENTICATED,
            "ASSERTION_BAD_SIGNATURE",
        ),
        (
            lambda n: stranger.id_token(audience=AUDIENCE, pid=n, now=now),
            UNAUTHENTICATED,
            "ASSERTION_UNTRUSTED_ISSUER",
        ),
        (
            lambda n: ISSUER.id_token(audience="someone-else", pid=n, now=now),
            UNAUTHENTICATED,
            "ASSERTION_WRONG_AUDIENCE",
        ),
        (
            lambda n: ISSUER.id_token(audience=AUDIENCE, pid=n, now=now - timedelta(hours=1)),
            UNAUTHENTICATED,
            "ASSERTION_EXPIRED",
        ),
        (lambda n: assertion_for(n, ial=IAL.IAL_2_2), DENIED, "ASSERTION_IAL_TOO_LOW"),
        (lambda n: assertion_for(new_citizen_number()), DENIED, "ASSERTION_SUBJECT_MISMATCH"),
        (lambda n: "not.a.token", grpc.StatusCode.INVALID_ARGUMENT, "ASSERTION_MALFORMED"),
    ]
    before = await _citizen_count(identity)
    for make, code, reason in cases:
        request = enroll_request(host)
        request = _with_assertion(request, make(request.citizen_id))
        error = await expect_error(
            identity.stub.EnrollCitizen(request), code, REASON, assertion_reason=reason
        )
        assert request.citizen_id not in (error.details() or "")
        assert not await _enrolled(identity, request.citizen_id)
    assert await _citizen_count(identity) == before


async def test_a_token_enrols_once(identity: Identity) -> None:
    host = await create_participant(identity)
    first = enroll_request(host)
    await identity.stub.EnrollCitizen(first)
    # The same token in a new request (say, a stolen copy) is refused as a replay.
    replay = enroll_request(host, first.citizen_id)
    replay = _with_assertion(replay, first.identity_assertion)
    await expect_error(
        identity.stub.EnrollCitizen(replay),
        UNAUTHENTICATED,
        REASON,
        assertion_reason="ASSERTION_REPLAYED",
    )


async def test_a_failed_enrolment_does_not_spend_its_token(identity: Identity) -> None:
    host = await create_participant(identity)
    request = enroll_request(host)
    await set_state(identity, host, "SUSPENDED")
    await expect_error(
        identity.stub.EnrollCitizen(request),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PARTICIPANT_NOT_ACTIVE",
    )
    async with identity.db.connect() as conn:
        spent = (
            await conn.execute(select(func.count()).select_from(assertion_replays))
        ).scalar_one()
    await set_state(identity, host, "ACTIVE")
    citizen = (await identity.stub.EnrollCitizen(request)).citizen
    assert citizen.name.startswith("citizens/")
    async with identity.db.connect() as conn:
        after = (
            await conn.execute(select(func.count()).select_from(assertion_replays))
        ).scalar_one()
    assert after == spent + 1


def _years_ago(years: int, *, days: int = 0) -> str:
    today = datetime.now(UTC).astimezone(THAILAND).date()
    born = date(today.year - years, today.month, min(today.day, 28)) + timedelta(days=days)
    return born.isoformat()


async def test_minors_need_a_guardians_consent(identity: Identity) -> None:
    host = await create_participant(identity)
    minor = enroll_request(host, birth_date=_years_ago(17))
    await expect_error(
        identity.stub.EnrollCitizen(minor),
        grpc.StatusCode.FAILED_PRECONDITION,
        "GUARDIAN_CONSENT_REQUIRED",
        field="guardian_consent",
    )
    assert not await _enrolled(identity, minor.citizen_id)

    given = Timestamp()
    given.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    minor.guardian_consent.CopyFrom(
        resources_pb2.GuardianConsent(consent_reference="bank-a/consent/7781", consent_time=given)
    )
    citizen = (await identity.stub.EnrollCitizen(minor)).citizen
    assert citizen.guardian_consent.consent_reference == "bank-a/consent/7781"
    assert citizen.guardian_consent.consent_time == given

    # Twenty years old (born a few weeks more than 20 years ago): an adult, no consent needed.
    adult = enroll_request(host, birth_date=_years_ago(20, days=-30))
    await identity.stub.EnrollCitizen(adult)


@pytest.mark.parametrize(
    "birth_date", ["", "2007-02-30", "17/05/1980", "1980-5-17", "1899-12-31", "2999-01-01"]
)
async def test_birth_dates_are_validated_without_echoing_them(
    identity: Identity, birth_date: str
) -> None:
    host = await create_participant(identity)
    request = enroll_request(host, birth_date=birth_date)
    error = await expect_error(
        identity.stub.EnrollCitizen(request),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="birth_date",
    )
    if birth_date:
        assert birth_date not in (error.details() or "")


async def test_an_assertion_and_a_name_are_required(identity: Identity) -> None:
    host = await create_participant(identity)
    for field in ("identity_assertion", "full_name"):
        request = enroll_request(host)
        request.ClearField(field)
        await expect_error(
            identity.stub.EnrollCitizen(request),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            field=field,
        )


async def test_spent_tokens_are_forgotten_once_expired(identity: Identity) -> None:
    now = datetime.now(UTC)
    async with identity.db.begin() as conn:
        await conn.execute(
            assertion_replays.insert(),
            [
                {"issuer": "https://prune.test", "jti": "old", "expires_at": now - timedelta(1)},
                {"issuer": "https://prune.test", "jti": "live", "expires_at": now + timedelta(1)},
            ],
        )
    assert await replays.prune(identity.db, now) >= 1
    async with identity.db.connect() as conn:
        left = set(
            (
                await conn.execute(
                    select(assertion_replays.c.jti).where(
                        assertion_replays.c.issuer == "https://prune.test"
                    )
                )
            ).scalars()
        )
    assert left == {"live"}

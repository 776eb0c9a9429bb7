"""ID-token assertions: signature, issuer, audience, time, replay and assurance checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm
from jwt.utils import base64url_encode

from openloop_identity.assertions import (
    AssertionConfigError,
    AssertionReason,
    AssertionRejectedError,
    AssertionVerifier,
    DevIssuer,
    InMemoryReplayGuard,
    VerifiedAssertion,
)
from openloop_identity.domain.assurance import (
    AAL,
    IAL,
    AssurancePolicy,
    LevelRequirement,
    Purpose,
)

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ISSUER = "https://thaid.example.test"
OTHER_ISSUER = "https://bank-idp.example.test"
AUDIENCE = "openloop-platform"
PID = "1345951597671"
SKEW = timedelta(seconds=60)
LIFETIME = timedelta(minutes=5)
ALGORITHMS = ["RS256", "ES256", "EdDSA"]


@pytest.fixture(scope="module")
def issuers() -> dict[str, DevIssuer]:
    return {algorithm: DevIssuer(ISSUER, algorithm=algorithm) for algorithm in ALGORITHMS}


@pytest.fixture(scope="module")
def thaid(issuers: dict[str, DevIssuer]) -> DevIssuer:
    return issuers["ES256"]


def verifier_for(*issuers: DevIssuer, **options: Any) -> AssertionVerifier:
    jwks: dict[str, dict[str, Any]] = {}
    for issuer in issuers:
        jwks.setdefault(issuer.issuer, {"keys": []})["keys"].extend(issuer.jwks["keys"])
    options.setdefault("replay_guard", InMemoryReplayGuard(clock=lambda: NOW))
    return AssertionVerifier(jwks, audience=AUDIENCE, **options)


def claims(issuer: DevIssuer, **changes: Any) -> dict[str, Any]:
    """A good claim set issued at NOW; a change to ``None`` removes that claim."""
    base: dict[str, Any] = {
        "iss": issuer.issuer,
        "sub": "subject-42",
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + LIFETIME,
        "jti": uuid.uuid4().hex,
        "pid": PID,
        "ial": "2.3",
        "aal": "2.1",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


async def rejected(verification: Awaitable[VerifiedAssertion]) -> AssertionRejectedError:
    """The refusal of a verification, after checking it does not reveal the citizen ID."""
    with pytest.raises(AssertionRejectedError) as caught:
        await verification
    assert PID not in str(caught.value)
    assert isinstance(caught.value, ValueError)
    return caught.value


def segments(token: str) -> list[str]:
    return token.split(".")


def b64json(value: dict[str, Any]) -> str:
    return base64url_encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_good_token_verifies_with_each_algorithm(
    issuers: dict[str, DevIssuer], algorithm: str
) -> None:
    issuer = issuers[algorithm]
    token = issuer.id_token(audience=AUDIENCE, pid=PID, now=NOW, subject="s-1", jti="j-1")
    result = await verifier_for(issuer).verify(token, purpose=Purpose.ENROLMENT, now=NOW)
    assert result == VerifiedAssertion(
        issuer=ISSUER,
        subject="s-1",
        pid=PID,
        ial=IAL.IAL_2_3,
        aal=AAL.AAL_2_1,
        jti="j-1",
        expiry=NOW + LIFETIME,
    )


async def test_repr_of_a_verified_assertion_hides_the_citizen_id(thaid: DevIssuer) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    result = await verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW)
    assert result.pid == PID
    assert PID not in repr(result)
    assert PID not in str(result)
    assert "IAL_2_3" in repr(result)


async def test_acr_stands_in_for_aal_when_aal_is_absent(thaid: DevIssuer) -> None:
    token = thaid.mint(claims(thaid, aal=None, acr="2.2"))
    result = await verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW)
    assert result.aal is AAL.AAL_2_2


async def test_aal_wins_over_acr(thaid: DevIssuer) -> None:
    token = thaid.mint(claims(thaid, aal="3", acr="2.1"))
    result = await verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW)
    assert result.aal is AAL.AAL_3


async def test_audience_may_be_a_list_containing_ours(thaid: DevIssuer) -> None:
    token = thaid.mint(claims(thaid, aud=["someone-else", AUDIENCE]))
    result = await verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW)
    assert result.issuer == ISSUER


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "!!!.???.***",
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA" + "A" * 20_000,  # over the length limit
        b64json({"alg": "ES256"})[:-2] + ".e30.",  # header is not valid base64url JSON
    ],
)
async def test_garbage_is_malformed(thaid: DevIssuer, token: str) -> None:
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.MALFORMED


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2, 3]",
        b"not json",
        b'{"iss": "https://thaid.example.test", "iss": "https://thaid.example.test"}',
    ],
)
async def test_claims_that_are_not_one_json_object_are_malformed(
    thaid: DevIssuer, payload: bytes
) -> None:
    token = thaid.mint(payload)
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.MALFORMED


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"exp": "1740819900"},
        {"exp": True},
        {"iat": [1]},
        {"nbf": "soon"},
        {"exp": 10**20},
        {"exp": NOW, "iat": NOW},  # exp must be after iat
        {"aud": 42},
        {"aud": [AUDIENCE, 7]},
        {"sub": ""},
        {"sub": 12},
        {"jti": "j" * 257},
        {"iss": 5},
        {"ial": "2"},
        {"ial": 2.3},
        {"aal": "2"},
        {"aal": None, "acr": "urn:mace:incommon:iap:silver"},
    ],
)
async def test_claims_of_the_wrong_shape_are_malformed(
    thaid: DevIssuer, changes: dict[str, Any]
) -> None:
    token = thaid.mint(claims(thaid, **changes))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.MALFORMED


async def test_a_float_numeric_date_is_accepted(thaid: DevIssuer) -> None:
    token = thaid.mint(claims(thaid, iat=NOW.timestamp() + 0.5, exp=NOW.timestamp() + 60.25))
    result = await verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW)
    assert result.expiry == NOW + timedelta(seconds=60.25)


async def test_exp_of_infinity_written_as_a_large_number_is_malformed(thaid: DevIssuer) -> None:
    body = json.dumps(claims(thaid, exp=None, iat=int(NOW.timestamp())))[:-1] + ', "exp": 1e400}'
    token = thaid.mint(body.encode())
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.MALFORMED


async def test_an_issuer_we_do_not_trust_is_refused(thaid: DevIssuer) -> None:
    stranger = DevIssuer("https://evil.example.test", kid=thaid.kid)
    token = stranger.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.UNTRUSTED_ISSUER
    assert "evil.example.test" in str(error)


async def test_values_from_the_token_are_cut_short_in_messages(thaid: DevIssuer) -> None:
    long_issuer = "https://evil.example.test/" + "x" * 5000
    token = thaid.mint(claims(thaid, iss=long_issuer))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.UNTRUSTED_ISSUER
    assert len(str(error)) < 200


async def test_a_token_without_iss_is_missing_a_claim(thaid: DevIssuer) -> None:
    token = thaid.mint(claims(thaid, iss=None))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.MISSING_CLAIM
    assert "iss" in str(error)


async def test_an_unknown_kid_is_refused(thaid: DevIssuer) -> None:
    token = thaid.mint(claims(thaid), headers={"kid": "not-published"})
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.UNKNOWN_KEY
    assert "not-published" in str(error)


async def test_a_token_naming_no_kid_is_an_unknown_key(thaid: DevIssuer) -> None:
    token = jwt.PyJWS().encode(
        json.dumps(
            claims(thaid, iat=int(NOW.timestamp()), exp=int((NOW + LIFETIME).timestamp()))
        ).encode(),
        thaid.private_key,
        algorithm="ES256",
    )
    assert "kid" not in jwt.get_unverified_header(token)
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.UNKNOWN_KEY


async def test_a_key_impersonating_a_trusted_kid_fails_the_signature(thaid: DevIssuer) -> None:
    impostor = DevIssuer(ISSUER, kid=thaid.kid)
    token = impostor.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.BAD_SIGNATURE


async def test_a_changed_payload_fails_the_signature(thaid: DevIssuer) -> None:
    header, _, signature = segments(thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW))
    forged_claims = claims(thaid, ial="3", iat=int(NOW.timestamp()))
    forged_claims["exp"] = int((NOW + LIFETIME).timestamp())
    token = f"{header}.{b64json(forged_claims)}.{signature}"
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.BAD_SIGNATURE


async def test_a_token_claiming_another_keys_algorithm_is_refused(
    issuers: dict[str, DevIssuer],
) -> None:
    rsa_issuer, ec_issuer = issuers["RS256"], issuers["ES256"]
    token = rsa_issuer.mint(claims(rsa_issuer), headers={"kid": ec_issuer.kid})
    verifier = verifier_for(rsa_issuer, ec_issuer)
    error = await rejected(verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.BAD_SIGNATURE
    assert "is for ES256" in str(error)


async def test_alg_none_is_refused(thaid: DevIssuer) -> None:
    header = b64json({"alg": "none", "kid": thaid.kid, "typ": "JWT"})
    body = claims(thaid, iat=int(NOW.timestamp()), exp=int((NOW + LIFETIME).timestamp()))
    token = f"{header}.{b64json(body)}."
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.BAD_SIGNATURE


@pytest.mark.parametrize("algorithm", ["none", "HS256", "HS512", "PS256", "ES384"])
async def test_other_algorithms_are_refused_before_any_key_lookup(
    thaid: DevIssuer, algorithm: str
) -> None:
    header = b64json({"alg": algorithm, "kid": "whatever"})
    body = claims(thaid, iss="https://evil.example.test", iat=1, exp=2)
    token = f"{header}.{b64json(body)}.c2ln"
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.BAD_SIGNATURE
    assert "not accepted" in str(error)


@pytest.mark.parametrize("secret_form", ["pem", "jwk"])
async def test_hs256_signed_with_the_public_key_is_refused(
    issuers: dict[str, DevIssuer], secret_form: str
) -> None:
    """Algorithm confusion: the public key is public, so an HMAC "signed" with it proves
    nothing. A verifier that let the token choose HS256 would accept this forgery."""
    victim = issuers["RS256"]
    public_key = RSAAlgorithm.from_jwk(victim.public_jwk)
    assert isinstance(public_key, rsa.RSAPublicKey)
    secret = (
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if secret_form == "pem"
        else json.dumps(victim.public_jwk).encode()
    )
    header = b64json({"alg": "HS256", "kid": victim.kid, "typ": "JWT"})
    body = claims(victim, iat=int(NOW.timestamp()), exp=int((NOW + LIFETIME).timestamp()))
    signing_input = f"{header}.{b64json(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64url_encode(mac).decode()}"
    error = await rejected(verifier_for(victim).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.BAD_SIGNATURE
    assert "HS256" in str(error)


@pytest.mark.parametrize("audience", ["someone-else", ["a", "b"], []])
async def test_a_token_for_another_audience_is_refused(thaid: DevIssuer, audience: Any) -> None:
    token = thaid.mint(claims(thaid, aud=audience))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.WRONG_AUDIENCE


@pytest.mark.parametrize("claim", ["sub", "aud", "exp", "iat", "jti", "pid", "ial"])
async def test_each_required_claim_must_be_present(thaid: DevIssuer, claim: str) -> None:
    token = thaid.mint(claims(thaid, **{claim: None}))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.MISSING_CLAIM
    assert claim in str(error)


async def test_aal_or_acr_must_be_present(thaid: DevIssuer) -> None:
    token = thaid.mint(claims(thaid, aal=None))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.MISSING_CLAIM
    assert "aal" in str(error)


async def test_an_expired_token_is_refused(thaid: DevIssuer) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW - timedelta(hours=1))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.EXPIRED


async def test_a_token_issued_in_the_future_is_not_yet_valid(thaid: DevIssuer) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW + timedelta(minutes=3))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.NOT_YET_VALID


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (LIFETIME + SKEW - timedelta(microseconds=1), True),
        (LIFETIME + SKEW, False),  # exp + skew is already too late
        (-SKEW, True),  # iat - skew is just in time
        (-SKEW - timedelta(microseconds=1), False),
    ],
)
async def test_skew_boundaries_around_iat_and_exp(
    thaid: DevIssuer, offset: timedelta, accepted: bool
) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    verification = verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW + offset)
    if accepted:
        assert (await verification).pid == PID
    else:
        error = await rejected(verification)
        expected = (
            AssertionReason.EXPIRED if offset > timedelta(0) else AssertionReason.NOT_YET_VALID
        )
        assert error.reason == expected


@pytest.mark.parametrize(
    ("nbf_after_now", "accepted"),
    [(SKEW, True), (SKEW + timedelta(seconds=1), False)],
)
async def test_skew_boundary_around_nbf(
    thaid: DevIssuer, nbf_after_now: timedelta, accepted: bool
) -> None:
    token = thaid.mint(claims(thaid, nbf=NOW + nbf_after_now))
    verification = verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW)
    if accepted:
        assert (await verification).issuer == ISSUER
    else:
        assert (await rejected(verification)).reason == AssertionReason.NOT_YET_VALID


async def test_a_configured_skew_is_honoured(thaid: DevIssuer) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    strict = verifier_for(thaid, clock_skew=timedelta(0))
    error = await rejected(strict.verify(token, purpose=Purpose.PAYMENT, now=NOW + LIFETIME))
    assert error.reason == AssertionReason.EXPIRED


@settings(deadline=None, max_examples=40)
@given(
    lag=st.integers(min_value=-20 * 60, max_value=20 * 60),
    lifetime=st.integers(min_value=1, max_value=10 * 60),
)
async def test_accepted_exactly_inside_the_skewed_validity_window(
    thaid: DevIssuer, lag: int, lifetime: int
) -> None:
    """A token issued at NOW and valid for ``lifetime`` seconds, verified ``lag`` seconds
    later, is accepted exactly when iat - skew <= now < exp + skew."""
    token = thaid.id_token(
        audience=AUDIENCE, pid=PID, now=NOW, lifetime=timedelta(seconds=lifetime)
    )
    now = NOW + timedelta(seconds=lag)
    inside = -SKEW.total_seconds() <= lag < lifetime + SKEW.total_seconds()
    verification = verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=now)
    if inside:
        assert (await verification).expiry == NOW + timedelta(seconds=lifetime)
    else:
        assert (await rejected(verification)).reason in {
            AssertionReason.EXPIRED,
            AssertionReason.NOT_YET_VALID,
        }


@pytest.mark.parametrize(
    ("lifetime", "accepted"),
    [(timedelta(minutes=10), True), (timedelta(minutes=10, seconds=1), False)],
)
async def test_lifetime_is_bounded(thaid: DevIssuer, lifetime: timedelta, accepted: bool) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW, lifetime=lifetime)
    verification = verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW)
    if accepted:
        assert (await verification).expiry == NOW + lifetime
    else:
        assert (await rejected(verification)).reason == AssertionReason.LIFETIME_TOO_LONG


async def test_a_configured_maximum_lifetime_is_honoured(thaid: DevIssuer) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW, lifetime=LIFETIME)
    verifier = verifier_for(thaid, max_lifetime=timedelta(minutes=2))
    error = await rejected(verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.LIFETIME_TOO_LONG


@pytest.mark.parametrize(
    "pid",
    [
        "1101700230705",  # check digit should be 8
        "0105536000313",  # a juristic tax ID, not a person
        "134595159767",
        "๑๓๔๕๙๕๑๕๙๗๖๗๑",  # Thai digits
        1345951597671,  # a number, not a string
    ],
)
async def test_an_invalid_pid_is_refused_without_echoing_it(thaid: DevIssuer, pid: Any) -> None:
    token = thaid.mint(claims(thaid, pid=pid))
    error = await rejected(verifier_for(thaid).verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.BAD_PID
    assert str(pid) not in str(error)


@pytest.mark.parametrize(
    ("purpose", "ial", "aal", "reason"),
    [
        (Purpose.ENROLMENT, IAL.IAL_2_3, AAL.AAL_1, None),
        (Purpose.ENROLMENT, IAL.IAL_3, AAL.AAL_1, None),
        (Purpose.ENROLMENT, IAL.IAL_2_2, AAL.AAL_3, AssertionReason.IAL_TOO_LOW),
        (Purpose.PAYMENT, IAL.IAL_1_1, AAL.AAL_2_1, None),
        (Purpose.PAYMENT, IAL.IAL_2_3, AAL.AAL_1, AssertionReason.AAL_TOO_LOW),
    ],
)
async def test_default_minimum_levels_per_purpose(
    thaid: DevIssuer, purpose: Purpose, ial: IAL, aal: AAL, reason: AssertionReason | None
) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW, ial=ial, aal=aal)
    verification = verifier_for(thaid).verify(token, purpose=purpose, now=NOW)
    if reason is None:
        result = await verification
        assert (result.ial, result.aal) == (ial, aal)
    else:
        error = await rejected(verification)
        assert error.reason == reason
        assert purpose.value in str(error)


async def test_a_configured_policy_is_honoured(thaid: DevIssuer) -> None:
    policy = AssurancePolicy({Purpose.PAYMENT: LevelRequirement(IAL.IAL_2_3, AAL.AAL_2_2)})
    verifier = verifier_for(thaid, policy=policy)
    low_aal = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW, aal=AAL.AAL_2_1)
    low_ial = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW, ial=IAL.IAL_2_1)
    good = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW, aal=AAL.AAL_2_2)
    failure = await rejected(verifier.verify(low_aal, purpose=Purpose.PAYMENT, now=NOW))
    assert failure.reason == AssertionReason.AAL_TOO_LOW
    failure = await rejected(verifier.verify(low_ial, purpose=Purpose.PAYMENT, now=NOW))
    assert failure.reason == AssertionReason.IAL_TOO_LOW
    assert (await verifier.verify(good, purpose=Purpose.PAYMENT, now=NOW)).aal is AAL.AAL_2_2


async def test_a_token_is_accepted_once(thaid: DevIssuer) -> None:
    verifier = verifier_for(thaid)
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    await verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW)
    error = await rejected(verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.REPLAYED
    fresh = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    assert (await verifier.verify(fresh, purpose=Purpose.PAYMENT, now=NOW)).pid == PID


async def test_the_same_jti_from_two_issuers_is_not_a_replay(thaid: DevIssuer) -> None:
    other = DevIssuer(OTHER_ISSUER)
    verifier = verifier_for(thaid, other)
    for issuer in (thaid, other):
        token = issuer.id_token(audience=AUDIENCE, pid=PID, now=NOW, jti="shared")
        assert (await verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW)).issuer == (
            issuer.issuer
        )


async def test_a_refused_token_does_not_use_up_its_jti(thaid: DevIssuer) -> None:
    verifier = verifier_for(thaid)
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW, ial=IAL.IAL_2_1)
    error = await rejected(verifier.verify(token, purpose=Purpose.ENROLMENT, now=NOW))
    assert error.reason == AssertionReason.IAL_TOO_LOW
    assert (await verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW)).ial is IAL.IAL_2_1


async def test_the_replay_guard_remembers_until_exp_plus_skew(thaid: DevIssuer) -> None:
    clock = [NOW]
    guard = InMemoryReplayGuard(clock=lambda: clock[0])
    verifier = verifier_for(thaid, replay_guard=guard)
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    await verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW)
    last_valid = NOW + LIFETIME + SKEW - timedelta(microseconds=1)
    clock[0] = last_valid
    error = await rejected(verifier.verify(token, purpose=Purpose.PAYMENT, now=last_valid))
    assert error.reason == AssertionReason.REPLAYED
    assert len(guard) == 1


async def test_the_in_memory_guard_prunes_expired_entries() -> None:
    clock = [NOW]
    guard = InMemoryReplayGuard(clock=lambda: clock[0])
    assert await guard.claim(ISSUER, "a", NOW + timedelta(minutes=1))
    assert await guard.claim(ISSUER, "b", NOW + timedelta(minutes=5))
    assert not await guard.claim(ISSUER, "a", NOW + timedelta(minutes=1))
    assert len(guard) == 2
    clock[0] = NOW + timedelta(minutes=1)
    assert await guard.claim(ISSUER, "c", NOW + timedelta(minutes=6))
    assert len(guard) == 2  # "a" is gone, "b" and "c" remain
    assert not await guard.claim(ISSUER, "b", NOW + timedelta(minutes=5))
    assert await guard.claim(ISSUER, "a", NOW + timedelta(minutes=2))


async def test_kid_rotation(thaid: DevIssuer) -> None:
    new = DevIssuer(ISSUER, algorithm="EdDSA", kid="2025-03")
    old = thaid
    verifier = verifier_for(old, new)
    for issuer in (old, new):
        token = issuer.id_token(audience=AUDIENCE, pid=PID, now=NOW)
        assert (await verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW)).pid == PID

    verifier.replace_keys(ISSUER, new.jwks)
    stale = old.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    error = await rejected(verifier.verify(stale, purpose=Purpose.PAYMENT, now=NOW))
    assert error.reason == AssertionReason.UNKNOWN_KEY
    assert old.kid in str(error)
    current = new.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    assert (await verifier.verify(current, purpose=Purpose.PAYMENT, now=NOW)).pid == PID


def test_keys_of_an_untrusted_issuer_cannot_be_installed(thaid: DevIssuer) -> None:
    with pytest.raises(AssertionConfigError, match="not trusted"):
        verifier_for(thaid).replace_keys(OTHER_ISSUER, thaid.jwks)


async def test_now_must_be_timezone_aware(thaid: DevIssuer) -> None:
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        await verifier_for(thaid).verify(
            token, purpose=Purpose.PAYMENT, now=NOW.replace(tzinfo=None)
        )


def test_dev_issuer_publishes_only_public_key_material(issuers: dict[str, DevIssuer]) -> None:
    for algorithm, issuer in issuers.items():
        (key,) = issuer.jwks["keys"]
        assert key["kid"] == issuer.kid
        assert key["alg"] == algorithm
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & key.keys()
    with pytest.raises(ValueError, match="signs with one of"):
        DevIssuer(ISSUER, algorithm="HS256")


def _jwks_with(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys)}


def test_symmetric_and_encryption_keys_are_skipped(thaid: DevIssuer) -> None:
    oct_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}
    enc_key = {**thaid.public_jwk, "kid": "enc", "use": "enc"}
    with pytest.raises(AssertionConfigError, match="no signing key"):
        AssertionVerifier(
            {ISSUER: _jwks_with(oct_key, enc_key)},
            audience=AUDIENCE,
            replay_guard=InMemoryReplayGuard(),
        )
    verifier = AssertionVerifier(
        {ISSUER: _jwks_with(oct_key, enc_key, thaid.public_jwk)},
        audience=AUDIENCE,
        replay_guard=InMemoryReplayGuard(),
    )
    assert isinstance(verifier, AssertionVerifier)


async def test_a_key_without_alg_gets_the_one_its_type_implies(thaid: DevIssuer) -> None:
    bare = {name: value for name, value in thaid.public_jwk.items() if name not in {"alg", "use"}}
    verifier = AssertionVerifier(
        {ISSUER: _jwks_with(bare)},
        audience=AUDIENCE,
        replay_guard=InMemoryReplayGuard(clock=lambda: NOW),
    )
    token = thaid.id_token(audience=AUDIENCE, pid=PID, now=NOW)
    assert (await verifier.verify(token, purpose=Purpose.PAYMENT, now=NOW)).issuer == ISSUER


def _short_rsa_jwk() -> dict[str, Any]:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the weak key under test)
    return {**RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True), "kid": "weak"}


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ({}, "no 'keys' list"),
        ({"keys": "none"}, "no 'keys' list"),
        ({"keys": ["x"]}, "not an object"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}, "no 'kid'"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k"}]}, "key 'k'"),
        ({"keys": [_short_rsa_jwk()]}, "key 'weak'"),
    ],
)
def test_unusable_jwks_are_configuration_errors(jwks: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionConfigError, match=message) as caught:
        AssertionVerifier({ISSUER: jwks}, audience=AUDIENCE, replay_guard=InMemoryReplayGuard())
    assert caught.value.reason == "ASSERTION_CONFIG_INVALID"


def test_duplicate_kids_and_private_keys_are_configuration_errors(thaid: DevIssuer) -> None:
    with pytest.raises(AssertionConfigError, match="two signing keys"):
        verifier_for(thaid, thaid)
    private = {**thaid.public_jwk, "d": "AAAA"}
    with pytest.raises(AssertionConfigError, match="private key material"):
        AssertionVerifier(
            {ISSUER: _jwks_with(private)}, audience=AUDIENCE, replay_guard=InMemoryReplayGuard()
        )


@pytest.mark.parametrize(
    "options",
    [
        {"audience": ""},
        {"clock_skew": timedelta(seconds=-1)},
        {"max_lifetime": timedelta(0)},
    ],
)
def test_verifier_settings_are_checked(thaid: DevIssuer, options: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"audience": AUDIENCE, "replay_guard": InMemoryReplayGuard()}
    with pytest.raises(AssertionConfigError):
        AssertionVerifier({ISSUER: thaid.jwks}, **{**arguments, **options})


def test_at_least_one_issuer_is_needed() -> None:
    with pytest.raises(AssertionConfigError, match="at least one"):
        AssertionVerifier({}, audience=AUDIENCE, replay_guard=InMemoryReplayGuard())


def test_a_saved_dev_issuer_key_signs_what_its_jwks_verifies() -> None:
    original = DevIssuer("https://id.dev.example", kid="dev-1")
    reloaded = DevIssuer(
        "https://id.dev.example", kid="dev-1", private_key_pem=original.private_key_pem()
    )
    assert reloaded.jwks == original.jwks
    token = reloaded.mint({"iss": "https://id.dev.example", "jti": "j1"})
    key = jwt.PyJWK(original.public_jwk)
    assert jwt.PyJWS().decode(token, key.key, algorithms=["ES256"]) == (
        b'{"iss":"https://id.dev.example","jti":"j1"}'
    )
    with pytest.raises(ValueError, match="ES256"):
        DevIssuer(
            "https://id.dev.example",
            algorithm="RS256",
            private_key_pem=original.private_key_pem(),
        )

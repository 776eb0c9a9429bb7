"""Participant credentials: client certificates and public JWKs, accepted and refused."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from openloop_identity.domain.credentials import (
    CERTIFICATE_FIELD,
    KEY_FIELD,
    MAX_JWK_LENGTH,
    MAX_PEM_LENGTH,
    AssertionKeyFacts,
    CertificateFacts,
    CredentialError,
    CredentialReason,
    parse_assertion_key,
    parse_client_certificate,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SPIFFE = "spiffe://openloop.dev/participants/bank-a"
ISSUER_KEY = ec.generate_private_key(ec.SECP256R1())
P256_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_2048_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_1024_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
ED25519_KEY = ed25519.Ed25519PrivateKey.generate()
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "TH"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bank A, Public Company"),
        x509.NameAttribute(NameOID.COMMON_NAME, "bank-a"),
    ]
)
DEFAULT_SANS: tuple[x509.GeneralName, ...] = (x509.UniformResourceIdentifier(SPIFFE),)


def make_certificate(
    *,
    key: Any = P256_KEY,
    sans: tuple[x509.GeneralName, ...] | None = DEFAULT_SANS,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=90),
    usages: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    """A certificate for ``key``'s public half, signed by a separate P-256 issuer key."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(SUBJECT)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenLoop test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ISSUER_KEY, hashes.SHA256())


def pem_of(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def certificate_refusal(pem: str, *, now: datetime = NOW) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        parse_client_certificate(pem, now=now)
    error = caught.value
    assert error.field == CERTIFICATE_FIELD
    assert CERTIFICATE_FIELD in str(error)
    # Lines of key material; a line of a few characters (random DER read as text) could
    # occur in any message by chance, so only lines long enough to be material count.
    base64_lines = [
        line for line in pem.splitlines() if len(line) >= 16 and not line.startswith("-----")
    ]
    assert not any(line in str(error) for line in base64_lines)
    return error


# Client certificates: accepted


def test_certificate_facts_match_the_certificate():
    certificate = make_certificate()
    der = certificate.public_bytes(serialization.Encoding.DER)

    facts = parse_client_certificate(pem_of(certificate), now=NOW)

    assert facts == CertificateFacts(
        sha256=hashlib.sha256(der).hexdigest(),
        subject="CN=bank-a,O=Bank A\\, Public Company,C=TH",
        san_uri=SPIFFE,
        not_before=(NOW - timedelta(days=1)).replace(microsecond=0),
        not_after=(NOW + timedelta(days=90)).replace(microsecond=0),
    )
    assert facts.not_before.utcoffset() == timedelta(0)
    assert facts.not_after.utcoffset() == timedelta(0)


def test_fingerprint_is_lower_case_hex_of_the_der():
    certificate = make_certificate()
    facts = parse_client_certificate(pem_of(certificate), now=NOW)

    der = certificate.public_bytes(serialization.Encoding.DER)
    assert facts.sha256 == hashlib.sha256(der).hexdigest()
    assert len(facts.sha256) == 64
    assert facts.sha256 == facts.sha256.lower()


def test_different_certificates_have_different_fingerprints():
    first = parse_client_certificate(pem_of(make_certificate()), now=NOW)
    second = parse_client_certificate(pem_of(make_certificate()), now=NOW)
    assert first.sha256 != second.sha256


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(P256_KEY, id="ec-p256"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()), id="ec-p384"),
        pytest.param(RSA_2048_KEY, id="rsa-2048"),
    ],
)
def test_accepted_key_kinds(key):
    facts = parse_client_certificate(pem_of(make_certificate(key=key)), now=NOW)
    assert facts.san_uri == SPIFFE


@pytest.mark.parametrize(
    "usages",
    [
        pytest.param([ExtendedKeyUsageOID.CLIENT_AUTH], id="client-auth"),
        pytest.param([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], id="both"),
    ],
)
def test_extended_key_usage_with_client_auth_is_accepted(usages):
    facts = parse_client_certificate(pem_of(make_certificate(usages=usages)), now=NOW)
    assert facts.san_uri == SPIFFE


def test_uri_san_is_found_among_other_names():
    sans = (
        x509.DNSName("bank-a.example"),
        x509.UniformResourceIdentifier(SPIFFE),
        x509.RFC822Name("pki@bank-a.example"),
    )
    facts = parse_client_certificate(pem_of(make_certificate(sans=sans)), now=NOW)
    assert facts.san_uri == SPIFFE


def test_certificate_not_valid_yet_is_accepted_for_rotation():
    certificate = make_certificate(
        not_before=NOW + timedelta(days=7), not_after=NOW + timedelta(days=97)
    )
    facts = parse_client_certificate(pem_of(certificate), now=NOW)
    assert facts.not_before > NOW


def test_certificate_valid_one_second_more_is_accepted():
    certificate = make_certificate(not_after=NOW + timedelta(seconds=1))
    facts = parse_client_certificate(pem_of(certificate), now=NOW)
    assert facts.not_after == NOW + timedelta(seconds=1)


def test_now_in_another_time_zone_is_compared_as_the_same_instant():
    bangkok = NOW.astimezone(timezone(timedelta(hours=7)))
    certificate = make_certificate(not_after=NOW + timedelta(seconds=1))
    assert parse_client_certificate(pem_of(certificate), now=bangkok).san_uri == SPIFFE
    certificate_refusal(pem_of(certificate), now=bangkok + timedelta(seconds=1))


def test_explanatory_text_around_the_block_is_ignored():
    certificate = make_certificate()
    pem = f"Bag Attributes\n    friendlyName: bank-a\n{pem_of(certificate)}\n"
    facts = parse_client_certificate(pem, now=NOW)
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert facts.sha256 == hashlib.sha256(der).hexdigest()


def test_pem_at_the_length_limit_is_accepted():
    pem = pem_of(make_certificate())
    padded = pem + "\n" * (MAX_PEM_LENGTH - len(pem))
    assert len(padded) == MAX_PEM_LENGTH
    assert parse_client_certificate(padded, now=NOW).san_uri == SPIFFE


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware") as caught:
        parse_client_certificate(pem_of(make_certificate()), now=NOW.replace(tzinfo=None))
    assert not isinstance(caught.value, CredentialError)


# Client certificates: refused


@pytest.mark.parametrize(
    "make_pem",
    [
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "not a certificate at all", id="garbage"),
        pytest.param(lambda: pem_of(make_certificate()) * 2, id="two-certificates"),
        pytest.param(
            lambda: pem_of(make_certificate()) + pem_of(make_certificate(key=RSA_2048_KEY)),
            id="certificate-and-chain",
        ),
        pytest.param(lambda: private_pem(P256_KEY), id="private-key"),
        pytest.param(lambda: private_pem(P256_KEY) + pem_of(make_certificate()), id="key-first"),
        pytest.param(lambda: pem_of(make_certificate()) + private_pem(P256_KEY), id="key-after"),
        pytest.param(
            lambda: RSA_2048_KEY.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode("ascii"),
            id="rsa-private-key",
        ),
        pytest.param(
            lambda: (
                P256_KEY.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode("ascii")
            ),
            id="public-key",
        ),
        pytest.param(
            lambda: pem_of(make_certificate()).replace("\n", "\nA", 3), id="corrupted-base64"
        ),
        pytest.param(lambda: pem_of(make_certificate()) + "ก", id="non-ascii"),
        pytest.param(lambda: pem_of(make_certificate()) + "\n" * MAX_PEM_LENGTH, id="too-long"),
    ],
)
def test_not_exactly_one_certificate_is_unparsable(make_pem: Callable[[], str]):
    error = certificate_refusal(make_pem())
    assert error.reason == CredentialReason.CERTIFICATE_UNPARSABLE


def test_private_key_refusal_says_to_send_the_certificate_only():
    error = certificate_refusal(private_pem(P256_KEY))
    assert "private key" in str(error)


def test_der_instead_of_pem_is_unparsable():
    der = make_certificate().public_bytes(serialization.Encoding.DER)
    error = certificate_refusal(der.decode("latin-1"))
    assert error.reason == CredentialReason.CERTIFICATE_UNPARSABLE


def _with_extensions(*extensions: x509.ExtensionType) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(SUBJECT)
        .issuer_name(SUBJECT)
        .public_key(P256_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=90))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(ISSUER_KEY, hashes.SHA256())


def test_duplicated_extension_is_unparsable():
    first, second = ObjectIdentifier("1.3.6.1.4.1.99999.1"), ObjectIdentifier("1.3.6.1.4.1.99999.2")
    certificate = _with_extensions(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(SPIFFE)]),
        x509.UnrecognizedExtension(first, b"\x05\x00"),
        x509.UnrecognizedExtension(second, b"\x05\x00"),
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    # The two OIDs differ only in their last byte (01, 02), so one becomes the other in place.
    assert der.count(b"\x8d\x1f\x02") == 1
    duplicated = x509.load_der_x509_certificate(der.replace(b"\x8d\x1f\x02", b"\x8d\x1f\x01"))

    error = certificate_refusal(pem_of(duplicated))

    assert error.reason == CredentialReason.CERTIFICATE_UNPARSABLE


def test_malformed_san_is_unparsable():
    garbage = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x01")
    error = certificate_refusal(pem_of(_with_extensions(garbage)))
    assert error.reason == CredentialReason.CERTIFICATE_UNPARSABLE


@pytest.mark.parametrize(
    "sans",
    [
        pytest.param(None, id="no-san-extension"),
        pytest.param((x509.DNSName("bank-a.example"),), id="dns-only"),
        pytest.param(
            (
                x509.UniformResourceIdentifier(SPIFFE),
                x509.UniformResourceIdentifier("spiffe://openloop.dev/participants/bank-b"),
            ),
            id="two-uris",
        ),
    ],
)
def test_not_exactly_one_uri_san_is_refused(sans):
    error = certificate_refusal(pem_of(make_certificate(sans=sans)))
    assert error.reason == CredentialReason.CERTIFICATE_NO_URI_SAN


@pytest.mark.parametrize(
    "not_after",
    [
        pytest.param(NOW - timedelta(days=1), id="yesterday"),
        pytest.param(NOW, id="at-now"),
    ],
)
def test_expired_certificate_is_refused(not_after):
    certificate = make_certificate(not_before=NOW - timedelta(days=90), not_after=not_after)
    error = certificate_refusal(pem_of(certificate))
    assert error.reason == CredentialReason.CERTIFICATE_EXPIRED


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(RSA_1024_KEY, id="rsa-1024"),
        pytest.param(ec.generate_private_key(ec.SECP521R1()), id="ec-p521"),
        pytest.param(ec.generate_private_key(ec.SECP256K1()), id="ec-secp256k1"),
        pytest.param(dsa.generate_private_key(key_size=2048), id="dsa"),
        pytest.param(ED25519_KEY, id="ed25519"),
    ],
)
def test_weak_or_unaccepted_key_is_refused(key):
    error = certificate_refusal(pem_of(make_certificate(key=key)))
    assert error.reason == CredentialReason.CERTIFICATE_WEAK_KEY


@pytest.mark.parametrize(
    "usages",
    [
        pytest.param([ExtendedKeyUsageOID.SERVER_AUTH], id="server-auth-only"),
        pytest.param([ExtendedKeyUsageOID.CODE_SIGNING], id="code-signing"),
        pytest.param([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], id="any-usage"),
    ],
)
def test_extended_key_usage_without_client_auth_is_refused(usages):
    error = certificate_refusal(pem_of(make_certificate(usages=usages)))
    assert error.reason == CredentialReason.CERTIFICATE_NOT_CLIENT


def test_certificate_checks_run_in_the_documented_order():
    expired_weak_server = make_certificate(
        key=RSA_1024_KEY,
        sans=None,
        not_after=NOW - timedelta(days=1),
        not_before=NOW - timedelta(days=2),
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    reasons = [certificate_refusal(pem_of(expired_weak_server)).reason]
    with_san = make_certificate(
        key=RSA_1024_KEY,
        not_after=NOW - timedelta(days=1),
        not_before=NOW - timedelta(days=2),
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    reasons.append(certificate_refusal(pem_of(with_san)).reason)
    current = make_certificate(key=RSA_1024_KEY, usages=[ExtendedKeyUsageOID.SERVER_AUTH])
    reasons.append(certificate_refusal(pem_of(current)).reason)
    assert reasons == [
        CredentialReason.CERTIFICATE_NO_URI_SAN,
        CredentialReason.CERTIFICATE_EXPIRED,
        CredentialReason.CERTIFICATE_WEAK_KEY,
    ]


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_arbitrary_text_is_refused_with_a_credential_error(text):
    with pytest.raises(CredentialError) as caught:
        parse_client_certificate(text, now=NOW)
    assert caught.value.reason == CredentialReason.CERTIFICATE_UNPARSABLE


@settings(max_examples=100)
@given(st.binary(min_size=1, max_size=200))
def test_garbage_inside_a_pem_block_is_unparsable(body):
    encoded = base64.encodebytes(body).decode("ascii")
    pem = f"-----BEGIN CERTIFICATE-----\n{encoded}-----END CERTIFICATE-----\n"
    error = certificate_refusal(pem)
    assert error.reason == CredentialReason.CERTIFICATE_UNPARSABLE


# Public JWKs


def public_jwk(key: Any, **members: Any) -> dict[str, Any]:
    """The public JWK of ``key`` as PyJWT writes it, with ``members`` added (None removes)."""
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    jwk.pop("key_ops", None)
    jwk["kid"] = "bank-a.2025-06:1"
    for name, value in members.items():
        if value is None:
            jwk.pop(name, None)
        else:
            jwk[name] = value
    return jwk


def key_refusal(jwk: dict[str, Any] | str) -> CredentialError:
    text = jwk if isinstance(jwk, str) else json.dumps(jwk)
    with pytest.raises(CredentialError) as caught:
        parse_assertion_key(text)
    error = caught.value
    assert error.field == KEY_FIELD
    assert KEY_FIELD in str(error)
    if isinstance(jwk, dict):
        for name in ("x", "y", "n", "d", "k", "p", "q"):
            value = jwk.get(name)
            if isinstance(value, str) and len(value) >= 8:
                assert value not in str(error)
    return error


ACCEPTED_KEYS = [
    pytest.param(P256_KEY, "ES256", {"kty", "crv", "x", "y", "kid"}, id="ec-p256"),
    pytest.param(RSA_2048_KEY, "RS256", {"kty", "n", "e", "kid"}, id="rsa-2048"),
    pytest.param(ED25519_KEY, "EdDSA", {"kty", "crv", "x", "kid"}, id="ed25519"),
]


@pytest.mark.parametrize(("key", "algorithm", "members"), ACCEPTED_KEYS)
def test_accepted_key_facts(key, algorithm, members):
    jwk = public_jwk(key)

    facts = parse_assertion_key(json.dumps(jwk))

    assert facts == AssertionKeyFacts(
        key_id="bank-a.2025-06:1",
        jwk_json=json.dumps(jwk, sort_keys=True, separators=(",", ":")),
        algorithm=algorithm,
    )
    assert set(json.loads(facts.jwk_json)) == members


@pytest.mark.parametrize(("key", "algorithm", "members"), ACCEPTED_KEYS)
def test_stored_key_verifies_the_participants_signatures(key, algorithm, members):
    facts = parse_assertion_key(json.dumps(public_jwk(key)))
    token = jwt.encode({"amount": 100}, key, algorithm=algorithm, headers={"kid": facts.key_id})

    stored = jwt.PyJWK(json.loads(facts.jwk_json), algorithm=facts.algorithm)

    assert jwt.decode(token, stored, algorithms=[facts.algorithm]) == {"amount": 100}


@pytest.mark.parametrize(("key", "algorithm", "members"), ACCEPTED_KEYS)
def test_declared_alg_and_use_are_kept(key, algorithm, members):
    facts = parse_assertion_key(json.dumps(public_jwk(key, alg=algorithm, use="sig")))
    stored = json.loads(facts.jwk_json)
    assert stored["alg"] == algorithm
    assert stored["use"] == "sig"
    assert set(stored) == members | {"alg", "use"}


def test_members_other_than_the_public_ones_are_dropped():
    jwk = public_jwk(P256_KEY, key_ops=["verify"], ext=True, x5t="abc", note="hello")
    stored = json.loads(parse_assertion_key(json.dumps(jwk)).jwk_json)
    assert set(stored) == {"kty", "crv", "x", "y", "kid"}


def test_canonical_json_is_sorted_and_compact():
    text = parse_assertion_key(json.dumps(public_jwk(RSA_2048_KEY, alg="RS256"))).jwk_json
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert " " not in text


@pytest.mark.parametrize(("key", "algorithm", "members"), ACCEPTED_KEYS)
@settings(max_examples=25)
@given(data=st.data())
def test_canonical_json_is_stable_under_member_order(key, algorithm, members, data):
    jwk = public_jwk(key, alg=algorithm, use="sig")
    reordered = dict(data.draw(st.permutations(list(jwk.items()))))
    indent = data.draw(st.sampled_from([None, 2]))

    first = parse_assertion_key(json.dumps(jwk))
    second = parse_assertion_key(json.dumps(reordered, indent=indent))

    assert second == first


def test_same_rsa_key_in_another_spelling_has_the_same_canonical_json():
    jwk = public_jwk(RSA_2048_KEY)
    modulus = RSA_2048_KEY.public_key().public_numbers().n.to_bytes(257, "big")
    padded = base64.urlsafe_b64encode(modulus).decode("ascii")
    assert padded.endswith("=")

    respelled = parse_assertion_key(json.dumps({**jwk, "n": padded}))

    assert respelled == parse_assertion_key(json.dumps(jwk))


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param("k", id="one-character"),
        pytest.param("K" * 64, id="sixty-four"),
        pytest.param("a.b_c:d-e.0123456789", id="punctuation"),
    ],
)
def test_key_id_is_accepted(kid):
    assert parse_assertion_key(json.dumps(public_jwk(P256_KEY, kid=kid))).key_id == kid


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("K" * 65, id="sixty-five"),
        pytest.param("bank a", id="space"),
        pytest.param("bank/a", id="slash"),
        pytest.param("ธนาคาร", id="thai"),
        pytest.param("bank-a\n", id="trailing-newline"),
        pytest.param(7, id="number"),
    ],
)
def test_bad_or_missing_key_id_is_refused(kid):
    jwk = public_jwk(P256_KEY)
    if kid is None:
        del jwk["kid"]
    else:
        jwk["kid"] = kid
    assert key_refusal(jwk).reason == CredentialReason.KEY_NO_KID


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_any_private_member_is_refused(member):
    jwk = public_jwk(RSA_2048_KEY, **{member: "c2VjcmV0LXZhbHVlLWhlcmU"})
    error = key_refusal(jwk)
    assert error.reason == CredentialReason.KEY_PRIVATE
    assert member in str(error)


@pytest.mark.parametrize(
    ("private_key", "write"),
    [
        pytest.param(P256_KEY, ECAlgorithm.to_jwk, id="ec"),
        pytest.param(RSA_2048_KEY, RSAAlgorithm.to_jwk, id="rsa"),
        pytest.param(ED25519_KEY, OKPAlgorithm.to_jwk, id="ed25519"),
    ],
)
def test_whole_private_jwk_is_refused(private_key, write):
    jwk = write(private_key, as_dict=True)
    jwk["kid"] = "bank-a-1"
    assert key_refusal(jwk).reason == CredentialReason.KEY_PRIVATE


def test_private_member_is_refused_before_anything_else():
    jwk = {"kty": "oct", "k": "c2VjcmV0LXZhbHVlLWhlcmU", "use": "enc"}
    assert key_refusal(jwk).reason == CredentialReason.KEY_PRIVATE


def test_rsa_1024_key_is_weak():
    error = key_refusal(public_jwk(RSA_1024_KEY))
    assert error.reason == CredentialReason.KEY_WEAK
    assert "1024" in str(error)


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({"kty": "oct", "kid": "bank-a-1"}, id="oct"),
        pytest.param(public_jwk(ec.generate_private_key(ec.SECP384R1())), id="ec-p384"),
        pytest.param(public_jwk(ec.generate_private_key(ec.SECP256K1())), id="ec-secp256k1"),
        pytest.param(public_jwk(P256_KEY, crv=None), id="ec-without-curve"),
        pytest.param(public_jwk(ED25519_KEY, crv="Ed448"), id="okp-ed448"),
        pytest.param(public_jwk(ED25519_KEY, crv="X25519"), id="okp-x25519"),
        pytest.param(public_jwk(P256_KEY, kty=None), id="no-kty"),
        pytest.param(public_jwk(P256_KEY, kty=["EC"]), id="kty-not-a-string"),
        pytest.param(public_jwk(P256_KEY, crv={"name": "P-256"}), id="crv-not-a-string"),
        pytest.param(public_jwk(P256_KEY, use="enc"), id="use-enc"),
        pytest.param(public_jwk(RSA_2048_KEY, alg="RSA-OAEP"), id="rsa-encryption-alg"),
        pytest.param(public_jwk(RSA_2048_KEY, alg="PS256"), id="rsa-pss"),
        pytest.param(public_jwk(RSA_2048_KEY, alg="HS256"), id="rsa-with-hmac-alg"),
        pytest.param(public_jwk(P256_KEY, alg="none"), id="alg-none"),
        pytest.param(public_jwk(P256_KEY, alg="RS256"), id="ec-with-rsa-alg"),
    ],
)
def test_unsupported_key_kind_use_or_alg_is_refused(jwk):
    assert key_refusal(jwk).reason == CredentialReason.KEY_UNSUPPORTED


def _off_curve(jwk: dict[str, Any]) -> dict[str, Any]:
    y = base64.urlsafe_b64decode(jwk["y"] + "==")
    flipped = bytes([y[0], *y[1:-1], y[-1] ^ 1])
    return {**jwk, "y": base64.urlsafe_b64encode(flipped).decode("ascii").rstrip("=")}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="array"),
        pytest.param('"kty"', id="string"),
        pytest.param(json.dumps({"keys": [public_jwk(P256_KEY)]}), id="jwks"),
        pytest.param('{"kty": "EC", "kty": "RSA"}', id="duplicate-member"),
        pytest.param('{"kty": "RSA", "e": NaN}', id="nan"),
        pytest.param("[" * 100_000, id="deeply-nested"),
        pytest.param(json.dumps(public_jwk(P256_KEY, x=None)), id="ec-without-x"),
        pytest.param(json.dumps(public_jwk(P256_KEY, x="AAAA")), id="ec-short-x"),
        pytest.param(json.dumps(public_jwk(P256_KEY, x=12345)), id="x-not-a-string"),
        pytest.param(json.dumps(_off_curve(public_jwk(P256_KEY))), id="ec-off-curve"),
        pytest.param(json.dumps(public_jwk(RSA_2048_KEY, n=None)), id="rsa-without-n"),
        pytest.param(json.dumps(public_jwk(RSA_2048_KEY, e="AAI")), id="rsa-even-exponent"),
        pytest.param(json.dumps(public_jwk(ED25519_KEY, x="AAAA")), id="ed25519-short-x"),
        pytest.param(json.dumps(public_jwk(P256_KEY, note="." * MAX_JWK_LENGTH)), id="too-long"),
    ],
)
def test_unparsable_key_is_refused(text):
    assert key_refusal(text).reason == CredentialReason.KEY_UNPARSABLE


def test_pyjwt_error_text_does_not_leak_the_key():
    jwk = public_jwk(P256_KEY, x="QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
    error = key_refusal(jwk)
    assert error.reason == CredentialReason.KEY_UNPARSABLE
    assert jwk["y"] not in str(error)
    assert "QUFBQUFB" not in str(error)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use", "keys"]),
        st.sampled_from(["EC", "RSA", "OKP", "P-256", "Ed25519", "sig", "ES256", "AQAB", "kid1"])
        | JSON_VALUES,
    )
)
def test_arbitrary_jwk_shapes_are_refused_with_a_credential_error(jwk):
    with pytest.raises(CredentialError) as caught:
        parse_assertion_key(json.dumps(jwk))
    assert caught.value.field == KEY_FIELD


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_arbitrary_text_is_refused_as_a_key(text):
    with pytest.raises(CredentialError):
        parse_assertion_key(text)

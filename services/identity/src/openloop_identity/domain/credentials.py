"""Participant credentials: read a client certificate or a public JWK and decide if it will do.

A participant (bank, e-wallet) registers two kinds of credential, several of each at once so it
can rotate without downtime:

- the TLS client certificate it presents at the edge. Envoy forwards the SHA-256 of the
  certificate's DER and its URI SAN, so those are what the platform records and matches on;
- the public keys (JWK) it signs its customers' payment authorisations with.

This module only reads and judges what the participant sent; storing it and the RPCs are
elsewhere. Parsing is the libraries': X.509 and PEM are ``cryptography``'s, JWKs are PyJWT's
(``jwt.PyJWK``). What is written here is the policy:

- a certificate must be exactly one PEM block, with exactly one URI SAN, not expired, an RSA key
  of 2048 bits or more or an EC key on P-256 or P-384, and, if it restricts its extended key
  usage, allowed for TLS client authentication. A certificate that is not valid yet is accepted,
  so the next one can be registered ahead of a rotation;
- a JWK must be a public signing key (``use`` absent or "sig") for ES256 (EC P-256), RS256 (RSA,
  2048 bits or more) or EdDSA (OKP Ed25519), with a ``kid`` the participant's tokens can name.

A private key sent by mistake is named as such before any other check of the key, so the
participant learns first that the key has left its hands and must be replaced. Every refusal is
a ``CredentialError`` whose ``reason`` the servicer turns into INVALID_ARGUMENT with ErrorInfo;
messages say what is wrong and never repeat the certificate or the key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

CERTIFICATE_FIELD = "credential.certificate_pem"
KEY_FIELD = "credential.public_jwk"

MAX_PEM_LENGTH = 16 * 1024
"""Longer certificates are refused before parsing; a client certificate is 1-3 KiB."""
MAX_JWK_LENGTH = 16 * 1024
"""Longer JWKs are refused before parsing; an RSA-4096 public JWK is under 1 KiB."""
MIN_RSA_BITS = 2048

_CERTIFICATE_CURVES = frozenset({ec.SECP256R1.name, ec.SECP384R1.name})
_PEM_BEGIN = re.compile(r"-----BEGIN ([^\r\n]*?)-----")
_KEY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_MATERIAL_MEMBERS = ("kty", "crv", "x", "y", "n", "e")
"""Public members that describe the key itself; re-encoded from the loaded key."""
_DECLARED_MEMBERS = ("kid", "alg", "use")
"""Public members that say how the key is used; copied as the participant wrote them."""
_ALGORITHM_FOR_KEY_TYPE = {
    ("EC", "P-256"): "ES256",
    ("RSA", None): "RS256",
    ("OKP", "Ed25519"): "EdDSA",
}
"""(kty, crv) of each accepted key kind, and the only algorithm it may be used with."""

_E = TypeVar("_E", bound=x509.ExtensionType)


class CredentialReason(StrEnum):
    CERTIFICATE_UNPARSABLE = "CERTIFICATE_UNPARSABLE"
    """Not exactly one PEM certificate: garbage, too long, several blocks, or a private key."""
    CERTIFICATE_NO_URI_SAN = "CERTIFICATE_NO_URI_SAN"
    """The certificate has no URI subject alternative name, or more than one."""
    CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
    CERTIFICATE_WEAK_KEY = "CERTIFICATE_WEAK_KEY"
    """The key is not RSA of 2048 bits or more, nor EC on P-256 or P-384."""
    CERTIFICATE_NOT_CLIENT = "CERTIFICATE_NOT_CLIENT"
    """The extended key usage is restricted and does not include TLS client authentication."""
    KEY_UNPARSABLE = "KEY_UNPARSABLE"
    """Not a JSON object, a whole JWKS, too long, or PyJWT cannot build a key from it."""
    KEY_PRIVATE = "KEY_PRIVATE"
    """The JWK holds private or secret key material."""
    KEY_NO_KID = "KEY_NO_KID"
    """The ``kid`` is missing or not 1 to 64 characters of A-Z a-z 0-9 . _ : -."""
    KEY_WEAK = "KEY_WEAK"
    """An RSA key shorter than 2048 bits."""
    KEY_UNSUPPORTED = "KEY_UNSUPPORTED"
    """Not an EC P-256, RSA or OKP Ed25519 signing key, or ``alg`` does not match the key."""


class CredentialError(ValueError):
    """A participant's certificate or public key is refused.

    ``reason`` is stable and machine-readable; ``field`` is the request field at fault
    (``CERTIFICATE_FIELD`` or ``KEY_FIELD``). The message never contains the credential.
    """

    def __init__(self, reason: CredentialReason, message: str, *, field: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What the platform records about an accepted client certificate."""

    sha256: str
    """64 lower-case hex digits: SHA-256 of the certificate's DER, as Envoy forwards it."""
    subject: str
    """The subject distinguished name as an RFC 4514 string."""
    san_uri: str
    """The certificate's only URI SAN, e.g. "spiffe://openloop.dev/participants/bank-a"."""
    not_before: datetime
    """Start of validity, timezone-aware UTC."""
    not_after: datetime
    """End of validity, timezone-aware UTC."""


@dataclass(frozen=True, slots=True)
class AssertionKeyFacts:
    """What the platform records about an accepted public signing key."""

    key_id: str
    """The JWK ``kid`` the participant's signed authorisations name in their header."""
    jwk_json: str
    """The public members only (kty, crv, x, y, n, e, kid, alg, use), as sorted compact JSON."""
    algorithm: str
    """"ES256", "RS256" or "EdDSA": the one algorithm signatures with this key may use."""


def parse_client_certificate(pem: str, *, now: datetime) -> CertificateFacts:
    """Read one PEM client certificate and check it can identify a participant at the edge.

    ``now`` must be timezone-aware. Raises ``CredentialError`` (field ``CERTIFICATE_FIELD``)
    with the reasons of ``CredentialReason.CERTIFICATE_*``, checked in the order they are
    listed there.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    certificate = _load_single_certificate(pem)
    try:
        extensions = certificate.extensions
    except (x509.DuplicateExtension, ValueError):
        _refuse_certificate(
            CredentialReason.CERTIFICATE_UNPARSABLE,
            "has extensions that cannot be read (malformed or duplicated); issue a new certificate",
        )
    san_uri = _single_uri_san(extensions)
    extended_key_usage = _extension(extensions, x509.ExtendedKeyUsage)
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    if not_after <= now.astimezone(UTC):
        _refuse_certificate(
            CredentialReason.CERTIFICATE_EXPIRED,
            f"expired at {not_after.isoformat()}; register a certificate that is still valid",
        )
    _check_certificate_key(certificate)
    if (
        extended_key_usage is not None
        and ExtendedKeyUsageOID.CLIENT_AUTH not in extended_key_usage.value
    ):
        _refuse_certificate(
            CredentialReason.CERTIFICATE_NOT_CLIENT,
            "has an extended key usage without clientAuth (1.3.6.1.5.5.7.3.2), so it cannot "
            "authenticate a TLS client; issue one whose extended key usage includes clientAuth",
        )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return CertificateFacts(
        sha256=hashlib.sha256(der).hexdigest(),
        subject=certificate.subject.rfc4514_string(),
        san_uri=san_uri,
        not_before=not_before,
        not_after=not_after,
    )


def parse_assertion_key(jwk_json: str) -> AssertionKeyFacts:
    """Read one public JWK and check participants may sign payment authorisations with it.

    Raises ``CredentialError`` (field ``KEY_FIELD``) with one of the ``CredentialReason.KEY_*``
    reasons. A private member is refused first, then the key kind, ``use`` and ``alg``, then the
    ``kid``, then what PyJWT makes of the key material, then its strength.
    """
    members = _json_object(jwk_json)
    private = sorted(_PRIVATE_JWK_MEMBERS & members.keys())
    if private:
        _refuse_key(
            CredentialReason.KEY_PRIVATE,
            f"holds private or secret key material (member {', '.join(private)}); send only "
            "the public key, and replace this key pair, since its private half has been shared",
        )
    algorithm = _signing_algorithm(members)
    key_id = members.get("kid")
    if not isinstance(key_id, str) or _KEY_ID.fullmatch(key_id) is None:
        _refuse_key(
            CredentialReason.KEY_NO_KID,
            'needs a "kid" of 1 to 64 characters from A-Z a-z 0-9 . _ : -',
        )
    if any(not isinstance(members.get(name, ""), str) for name in _KEY_MATERIAL_MEMBERS):
        _refuse_key(CredentialReason.KEY_UNPARSABLE, "has a key member that is not a string")
    try:
        key = jwt.PyJWK(members, algorithm=algorithm)
    except (jwt.PyJWTError, ValueError, TypeError):
        # PyJWT's messages quote the whole JWK, so none of it is passed on.
        _refuse_key(
            CredentialReason.KEY_UNPARSABLE,
            "is not a valid public key: a coordinate or modulus is missing, has the wrong "
            "length or is not base64url, or the point is not on the curve",
        )
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        _refuse_key(
            CredentialReason.KEY_WEAK,
            f"is an RSA key of {key.key.key_size} bits; use at least {MIN_RSA_BITS}",
        )
    material = key.Algorithm.to_jwk(key.key, as_dict=True)
    public = {name: material[name] for name in _KEY_MATERIAL_MEMBERS if name in material}
    public.update({name: members[name] for name in _DECLARED_MEMBERS if name in members})
    return AssertionKeyFacts(
        key_id=key_id,
        jwk_json=json.dumps(public, sort_keys=True, separators=(",", ":")),
        algorithm=algorithm,
    )


def _refuse_certificate(reason: CredentialReason, problem: str) -> NoReturn:
    raise CredentialError(reason, f"{CERTIFICATE_FIELD} {problem}", field=CERTIFICATE_FIELD)


def _refuse_key(reason: CredentialReason, problem: str) -> NoReturn:
    raise CredentialError(reason, f"{KEY_FIELD} {problem}", field=KEY_FIELD)


def _load_single_certificate(pem: str) -> x509.Certificate:
    """The one certificate in ``pem``; cryptography alone would skip other blocks silently."""
    unparsable = CredentialReason.CERTIFICATE_UNPARSABLE
    if len(pem) > MAX_PEM_LENGTH:
        _refuse_certificate(unparsable, f"is longer than {MAX_PEM_LENGTH} characters")
    labels = _PEM_BEGIN.findall(pem)
    if any("PRIVATE KEY" in label for label in labels):
        _refuse_certificate(
            unparsable,
            "contains a private key; send only the certificate, and replace this key pair, "
            "since its private key has been shared",
        )
    if len(labels) != 1:
        _refuse_certificate(
            unparsable,
            f"must hold exactly one PEM block (-----BEGIN CERTIFICATE-----), found {len(labels)}",
        )
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (UnicodeEncodeError, ValueError):
        _refuse_certificate(unparsable, "is not a PEM-encoded X.509 certificate")


def _extension(extensions: x509.Extensions, kind: type[_E]) -> x509.Extension[_E] | None:
    try:
        return extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _single_uri_san(extensions: x509.Extensions) -> str:
    san = _extension(extensions, x509.SubjectAlternativeName)
    uris = [] if san is None else san.value.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        _refuse_certificate(
            CredentialReason.CERTIFICATE_NO_URI_SAN,
            f"must have exactly one URI subject alternative name naming the participant "
            f"(e.g. spiffe://openloop.dev/participants/<id>), found {len(uris)}",
        )
    return uris[0]


def _check_certificate_key(certificate: x509.Certificate) -> None:
    accepted = f"use RSA of at least {MIN_RSA_BITS} bits, or EC on P-256 or P-384"
    weak = CredentialReason.CERTIFICATE_WEAK_KEY
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        _refuse_certificate(weak, f"has a key of a type the platform does not accept; {accepted}")
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            _refuse_certificate(weak, f"has an RSA key of {key.key_size} bits; {accepted}")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CERTIFICATE_CURVES:
            _refuse_certificate(weak, f"has an EC key on curve {key.curve.name}; {accepted}")
    else:
        _refuse_certificate(weak, f"has a key of a type the platform does not accept; {accepted}")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError("a member appears twice")
        result[name] = value
    return result


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError("NaN and Infinity are not JSON")


def _json_object(jwk_json: str) -> dict[str, Any]:
    unparsable = CredentialReason.KEY_UNPARSABLE
    if len(jwk_json) > MAX_JWK_LENGTH:
        _refuse_key(unparsable, f"is longer than {MAX_JWK_LENGTH} characters")
    try:
        members = json.loads(
            jwk_json, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except ValueError:
        _refuse_key(unparsable, "is not JSON, or has a member twice")
    except RecursionError:
        _refuse_key(unparsable, "is nested too deeply to be a JWK")
    if not isinstance(members, dict):
        _refuse_key(unparsable, "must be one JSON object (a JWK)")
    if "keys" in members and "kty" not in members:
        _refuse_key(unparsable, 'is a JWKS; send each key on its own, not the {"keys": [...]} set')
    return members


def _signing_algorithm(members: dict[str, Any]) -> str:
    """The algorithm the key is for, or refuse it as a kind, use or alg we do not accept."""
    kty, crv = members.get("kty"), members.get("crv")
    if kty == "RSA":
        crv = None
    algorithm = None
    if isinstance(kty, str) and (crv is None or isinstance(crv, str)):
        algorithm = _ALGORITHM_FOR_KEY_TYPE.get((kty, crv))
    if algorithm is None:
        _refuse_key(
            CredentialReason.KEY_UNSUPPORTED,
            'must be an EC P-256 ("kty": "EC", "crv": "P-256"), RSA ("kty": "RSA") or '
            'Ed25519 ("kty": "OKP", "crv": "Ed25519") public key',
        )
    if members.get("use", "sig") != "sig":
        _refuse_key(
            CredentialReason.KEY_UNSUPPORTED,
            'is not a signing key: "use" must be "sig" or absent',
        )
    if members.get("alg", algorithm) != algorithm:
        _refuse_key(
            CredentialReason.KEY_UNSUPPORTED,
            f'declares an "alg" this key kind cannot be used with here; use {algorithm} or '
            'leave "alg" out',
        )
    return algorithm

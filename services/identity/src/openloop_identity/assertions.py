"""Verifying identity assertions: OpenID Connect ID tokens from ThaiD-style providers.

A bank or e-wallet proves who a citizen is by passing on the ID token its identity provider
issued. The token carries the 13-digit citizen ID (``pid``) and the assurance levels (``ial``,
and ``aal`` or ``acr``); the platform accepts it only if a trusted issuer signed it for us,
recently, once, and at the levels the purpose needs (see ``domain.assurance``).

JWS parsing and signature verification are PyJWT's (``jwt.PyJWS`` with ``jwt.PyJWK`` keys).
This module chooses the key by issuer and ``kid``, accepts only the asymmetric algorithms
RS256, ES256 and EdDSA (never ``none`` or HMAC, whose "secret" an attacker could take from
our public keys), and checks the claims itself against the caller's ``now``, because PyJWT's
own claim checks read the wall clock and map poorly onto stable reasons.

Every refusal is an ``AssertionRejectedError`` whose ``reason`` the servicer turns into
INVALID_ARGUMENT with ErrorInfo. Messages name claims, never their personal values.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn, Protocol, TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from openloop_identity.domain.assurance import (
    AAL,
    IAL,
    AssuranceError,
    AssurancePolicy,
    Purpose,
)
from openloop_identity.domain.thai_id import is_valid_citizen_id
from openloop_runtime.timestamps import utc_now

ACCEPTED_ALGORITHMS = ("RS256", "ES256", "EdDSA")
"""Signature algorithms an assertion may use. Symmetric and unsigned ones are refused."""

_KEY_SHAPE = {
    "RS256": ("RSA", None),
    "ES256": ("EC", {"P-256"}),
    "EdDSA": ("OKP", {"Ed25519", "Ed448"}),
}
"""For each accepted algorithm, the JWK ``kty`` it needs and, where it matters, the curves."""

_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

DEFAULT_CLOCK_SKEW = timedelta(seconds=60)
DEFAULT_MAX_LIFETIME = timedelta(minutes=10)
MAX_TOKEN_LENGTH = 16 * 1024
"""Longer tokens are refused before any parsing; real ID tokens are a few kilobytes."""
MAX_CLAIM_TEXT_LENGTH = 256
"""Longest ``sub`` or ``jti``; bounds what one token can make the replay guard store."""
_SHOWN_LENGTH = 80

_REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "pid", "ial")


class AssertionReason(StrEnum):
    """Stable, machine-readable reasons an assertion is refused."""

    MALFORMED = "ASSERTION_MALFORMED"
    UNTRUSTED_ISSUER = "ASSERTION_UNTRUSTED_ISSUER"
    UNKNOWN_KEY = "ASSERTION_UNKNOWN_KEY"
    BAD_SIGNATURE = "ASSERTION_BAD_SIGNATURE"
    WRONG_AUDIENCE = "ASSERTION_WRONG_AUDIENCE"
    EXPIRED = "ASSERTION_EXPIRED"
    NOT_YET_VALID = "ASSERTION_NOT_YET_VALID"
    LIFETIME_TOO_LONG = "ASSERTION_LIFETIME_TOO_LONG"
    REPLAYED = "ASSERTION_REPLAYED"
    MISSING_CLAIM = "ASSERTION_MISSING_CLAIM"
    IAL_TOO_LOW = "ASSERTION_IAL_TOO_LOW"
    AAL_TOO_LOW = "ASSERTION_AAL_TOO_LOW"
    BAD_PID = "ASSERTION_BAD_PID"
    PAYMENT_MISMATCH = "ASSERTION_PAYMENT_MISMATCH"


class AssertionRejectedError(ValueError):
    """An identity assertion the platform will not accept; ``claim`` names the one claim at
    fault where the reason alone does not say which (a payment authorisation's binding)."""

    def __init__(self, reason: AssertionReason, message: str, *, claim: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.claim = claim


class AssertionConfigError(ValueError):
    """A trusted issuer's JWKS, or the verifier's settings, cannot be used."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = "ASSERTION_CONFIG_INVALID"


class ReplayGuard(Protocol):
    """Remembers which assertions were already used, for as long as they could be used."""

    async def claim(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """Records ``(issuer, jti)`` until ``expires_at``; False if it was already recorded."""
        ...


class InMemoryReplayGuard:
    """A ``ReplayGuard`` for tests and a single process; it forgets everything on restart.

    Entries are pruned once ``clock()`` passes their ``expires_at``, so ``clock`` must agree
    with the ``now`` given to the verifier: a clock running ahead would forget a token the
    verifier still accepts.
    """

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, str], datetime] = {}

    async def claim(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        now = self._clock()
        self._seen = {key: until for key, until in self._seen.items() if until > now}
        key = (issuer, jti)
        if key in self._seen:
            return False
        self._seen[key] = expires_at
        return True

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """What a verified ID token says about the person; ``repr`` leaves the citizen ID out."""

    issuer: str
    subject: str
    pid: str = field(repr=False)
    ial: IAL
    aal: AAL
    jti: str
    expiry: datetime
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Every claim of the verified token, for a purpose's own claims (a payment
    authorisation's ``payee`` and ``amount``, see ``payment_binding``)."""


def _load_jwks(issuer: str, jwks: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The signing keys of one issuer, by ``kid``.

    Keys for encryption or for algorithms we do not accept are skipped, since a real
    provider's JWKS may publish them; anything else unusable is a configuration error.
    """
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise AssertionConfigError(f"the JWKS of issuer {issuer!r} has no 'keys' list")
    loaded: dict[str, jwt.PyJWK] = {}
    for entry in keys:
        if not isinstance(entry, Mapping):
            raise AssertionConfigError(
                f"the JWKS of issuer {issuer!r} has a key that is not an object"
            )
        algorithm = _signing_algorithm(entry)
        if algorithm is None:
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AssertionConfigError(f"a {algorithm} key of issuer {issuer!r} has no 'kid'")
        if kid in loaded:
            raise AssertionConfigError(f"issuer {issuer!r} has two signing keys with kid {kid!r}")
        if _PRIVATE_JWK_MEMBERS & entry.keys():
            raise AssertionConfigError(
                f"key {kid!r} of issuer {issuer!r} holds private key material; "
                "configure the public JWKS only"
            )
        try:
            key = jwt.PyJWK(dict(entry), algorithm=algorithm)
        except jwt.PyJWTError as error:
            raise AssertionConfigError(f"key {kid!r} of issuer {issuer!r}: {error}") from None
        weakness = key.Algorithm.check_key_length(key.key)
        if weakness:
            raise AssertionConfigError(f"key {kid!r} of issuer {issuer!r}: {weakness}")
        loaded[kid] = key
    if not loaded:
        accepted = ", ".join(ACCEPTED_ALGORITHMS)
        raise AssertionConfigError(
            f"the JWKS of issuer {issuer!r} has no signing key for any of {accepted}"
        )
    return loaded


def _signing_algorithm(entry: Mapping[str, Any]) -> str | None:
    """The accepted algorithm a JWK is for (declared, or implied by its type), else None."""
    if entry.get("use", "sig") != "sig":
        return None
    kty, crv, declared = entry.get("kty"), entry.get("crv"), entry.get("alg")
    for algorithm, (needed_kty, curves) in _KEY_SHAPE.items():
        if declared not in (None, algorithm) or kty != needed_kty:
            continue
        if curves is not None and crv not in curves:
            continue
        return algorithm
    return None


def _shown(value: object) -> str:
    """A value from the token, quoted and cut short, for a message that may reach a log."""
    text = repr(value)
    return text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 3] + "..."


def _malformed(message: str) -> AssertionRejectedError:
    return AssertionRejectedError(AssertionReason.MALFORMED, message)


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"claim {name!r} appears twice")
        result[name] = value
    return result


def _parse_claims(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(
            payload, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError) as error:
        raise _malformed(f"the token's claims are not valid JSON: {error}") from None
    if not isinstance(claims, dict):
        raise _malformed("the token's claims are not a JSON object")
    return claims


def _numeric_date(claims: Mapping[str, Any], name: str) -> datetime:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _malformed(f"claim {name!r} must be a NumericDate (seconds since the epoch)")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise _malformed(f"claim {name!r} is out of range") from None


def _short_text(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_TEXT_LENGTH:
        raise _malformed(
            f"claim {name!r} must be a non-empty string of at most {MAX_CLAIM_TEXT_LENGTH}"
        )
    return value


_Level = TypeVar("_Level", IAL, AAL)


def _level(kind: type[_Level], claims: Mapping[str, Any], name: str) -> _Level:
    try:
        return kind.parse(claims[name])
    except AssuranceError as error:
        raise _malformed(f"claim {name!r}: {error}") from None


class CallerSuppliedGuard:
    """The verifier's default guard when every call passes its own (``verify(...,
    replay_guard=...)``), as the services do with a guard on their transaction: reaching it
    is a defect, so it refuses loudly instead of silently spending nothing."""

    async def claim(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        raise RuntimeError("this verifier needs a replay guard passed to verify()")


class AssertionVerifier:
    """Checks ID tokens from trusted issuers for one audience (our client ID)."""

    def __init__(
        self,
        trusted_issuers: Mapping[str, Mapping[str, Any]],
        *,
        audience: str,
        replay_guard: ReplayGuard,
        policy: AssurancePolicy | None = None,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
    ) -> None:
        """``trusted_issuers`` maps each issuer URL (the ``iss`` value) to its JWKS as loaded
        from JSON. ``max_lifetime`` bounds ``exp - iat``; ``clock_skew`` is allowed on every
        time check, both ways."""
        if not audience:
            raise AssertionConfigError("audience must be our client ID, not empty")
        if clock_skew < timedelta(0):
            raise AssertionConfigError("clock_skew must not be negative")
        if max_lifetime <= timedelta(0):
            raise AssertionConfigError("max_lifetime must be positive")
        self._keys = {issuer: _load_jwks(issuer, jwks) for issuer, jwks in trusted_issuers.items()}
        if not self._keys:
            raise AssertionConfigError("at least one trusted issuer is needed")
        self._audience = audience
        self._replay_guard = replay_guard
        self._policy = policy or AssurancePolicy()
        self._clock_skew = clock_skew
        self._max_lifetime = max_lifetime
        self._jws = jwt.PyJWS(
            algorithms=list(ACCEPTED_ALGORITHMS), options={"enforce_minimum_key_length": True}
        )

    def replace_keys(self, issuer: str, jwks: Mapping[str, Any]) -> None:
        """Installs a trusted issuer's current JWKS (key rotation). Tokens signed by a key
        no longer listed fail with ASSERTION_UNKNOWN_KEY."""
        if issuer not in self._keys:
            raise AssertionConfigError(f"issuer {issuer!r} is not trusted; cannot replace its keys")
        self._keys[issuer] = _load_jwks(issuer, jwks)

    async def verify(
        self,
        token: str,
        *,
        purpose: Purpose,
        now: datetime,
        replay_guard: ReplayGuard | None = None,
    ) -> VerifiedAssertion:
        """The assertion ``token`` makes, if it may be used for ``purpose`` at ``now``.

        A token that passes every check is recorded with the replay guard, so verifying it a
        second time fails with ASSERTION_REPLAYED. ``replay_guard`` overrides the verifier's
        own for this call: a guard on the caller's transaction, so the token is spent only
        if that transaction commits.
        """
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        claims = self._verified_claims(token)
        issuer: str = claims["iss"]
        missing = [name for name in _REQUIRED_CLAIMS if name not in claims]
        if "aal" not in claims and "acr" not in claims:
            missing.append("aal (or acr)")
        if missing:
            raise AssertionRejectedError(
                AssertionReason.MISSING_CLAIM,
                f"the token lacks required claims: {', '.join(missing)}",
            )
        subject = _short_text(claims, "sub")
        jti = _short_text(claims, "jti")
        self._check_audience(claims["aud"])
        expiry = self._check_times(claims, now)
        pid = claims["pid"]
        if not isinstance(pid, str) or not is_valid_citizen_id(pid):
            raise AssertionRejectedError(
                AssertionReason.BAD_PID,
                "claim 'pid' is not a valid 13-digit citizen ID (as a string, check digit correct)",
            )
        ial = _level(IAL, claims, "ial")
        aal = _level(AAL, claims, "aal" if "aal" in claims else "acr")
        requirement = self._policy.requirement_for(purpose)
        if not ial.meets(requirement.min_ial):
            raise AssertionRejectedError(
                AssertionReason.IAL_TOO_LOW,
                f"the identity was proofed at {ial}; {purpose.value} needs "
                f"{requirement.min_ial} or higher",
            )
        if not aal.meets(requirement.min_aal):
            raise AssertionRejectedError(
                AssertionReason.AAL_TOO_LOW,
                f"the person authenticated at {aal}; {purpose.value} needs "
                f"{requirement.min_aal} or higher",
            )
        guard = replay_guard or self._replay_guard
        if not await guard.claim(issuer, jti, expiry + self._clock_skew):
            raise AssertionRejectedError(
                AssertionReason.REPLAYED,
                f"this token (jti {jti!r} from {issuer!r}) was already used; "
                "ask the identity provider for a new one",
            )
        return VerifiedAssertion(
            issuer=issuer,
            subject=subject,
            pid=pid,
            ial=ial,
            aal=aal,
            jti=jti,
            expiry=expiry,
            claims=claims,
        )

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """The claims, once the signature of a trusted issuer's key is checked.

        The unverified ``iss`` and ``kid`` only choose the key: a token that lies about them
        fails the signature check.
        """
        if not isinstance(token, str) or not token:
            raise _malformed("the assertion must be a non-empty compact JWS string")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _malformed(f"the assertion is longer than {MAX_TOKEN_LENGTH} characters")
        try:
            unverified = self._jws.decode_complete(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise _malformed(f"the assertion is not a compact JWS: {error}") from None
        header: dict[str, Any] = unverified["header"]
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise AssertionRejectedError(
                AssertionReason.BAD_SIGNATURE,
                f"algorithm {_shown(algorithm)} is not accepted; sign with one of "
                f"{', '.join(ACCEPTED_ALGORITHMS)}",
            )
        issuer = _parse_claims(unverified["payload"]).get("iss")
        if issuer is None:
            raise AssertionRejectedError(
                AssertionReason.MISSING_CLAIM, "the token lacks required claims: iss"
            )
        if not isinstance(issuer, str):
            raise _malformed("claim 'iss' must be a string")
        keys = self._keys.get(issuer)
        if keys is None:
            raise AssertionRejectedError(
                AssertionReason.UNTRUSTED_ISSUER, f"issuer {_shown(issuer)} is not trusted"
            )
        kid = header.get("kid")
        key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise AssertionRejectedError(
                AssertionReason.UNKNOWN_KEY,
                f"issuer {issuer!r} has no current signing key with kid {_shown(kid)}; "
                "the key may have been rotated out",
            )
        if key.algorithm_name != algorithm:
            raise AssertionRejectedError(
                AssertionReason.BAD_SIGNATURE,
                f"key {kid!r} is for {key.algorithm_name}, but the token says {algorithm}",
            )
        try:
            verified = self._jws.decode_complete(token, key=key)
        except jwt.PyJWTError:
            raise AssertionRejectedError(
                AssertionReason.BAD_SIGNATURE,
                f"the signature does not verify with key {kid!r} of issuer {issuer!r}",
            ) from None
        return _parse_claims(verified["payload"])

    def _check_audience(self, audience: object) -> None:
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise _malformed("claim 'aud' must be a string or a list of strings")
        if self._audience not in audiences:
            raise AssertionRejectedError(
                AssertionReason.WRONG_AUDIENCE,
                f"the token is for audience {_shown(audience)}, not for {self._audience!r}",
            )

    def _check_times(self, claims: Mapping[str, Any], now: datetime) -> datetime:
        """The token's expiry, once it is valid at ``now`` give or take the clock skew."""
        expiry = _numeric_date(claims, "exp")
        issued_at = _numeric_date(claims, "iat")
        not_before = _numeric_date(claims, "nbf") if "nbf" in claims else None
        skew = self._clock_skew
        if expiry <= issued_at:
            raise _malformed("claim 'exp' must be after claim 'iat'")
        if now >= expiry + skew:
            raise AssertionRejectedError(
                AssertionReason.EXPIRED,
                f"the token expired at {expiry.isoformat()} "
                f"(clock skew allowed: {skew.total_seconds():g} s)",
            )
        if issued_at - skew > now:
            raise AssertionRejectedError(
                AssertionReason.NOT_YET_VALID,
                f"the token is issued in the future, at {issued_at.isoformat()}; "
                "check the identity provider's clock",
            )
        if not_before is not None and not_before - skew > now:
            raise AssertionRejectedError(
                AssertionReason.NOT_YET_VALID,
                f"the token is not valid before {not_before.isoformat()}",
            )
        if expiry - issued_at > self._max_lifetime:
            raise AssertionRejectedError(
                AssertionReason.LIFETIME_TOO_LONG,
                f"the token lives {(expiry - issued_at).total_seconds():g} s from iat to exp; "
                f"at most {self._max_lifetime.total_seconds():g} s is accepted",
            )
        return expiry


_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _new_key_pair(algorithm: str) -> tuple[_PrivateKey, dict[str, Any]]:
    """A fresh private key for ``algorithm`` and its public half as a JWK."""
    if algorithm == "RS256":
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return rsa_key, RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    if algorithm == "ES256":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        return ec_key, ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    if algorithm == "EdDSA":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        return ed_key, OKPAlgorithm.to_jwk(ed_key.public_key(), as_dict=True)
    raise ValueError(f"DevIssuer signs with one of {', '.join(ACCEPTED_ALGORITHMS)}")


class DevIssuer:
    """A throwaway identity provider for tests and the dev mesh; never for production.

    It makes a fresh key pair (with ``cryptography``), publishes the public half as a JWKS,
    and signs whatever claims it is given, so tests can also mint broken tokens.
    """

    def __init__(
        self,
        issuer: str,
        *,
        algorithm: str = "ES256",
        kid: str | None = None,
        private_key_pem: bytes | None = None,
    ) -> None:
        """``private_key_pem`` (an ES256 key saved by :meth:`private_key_pem`) keeps one dev
        issuer across restarts, as the dev mesh does; otherwise a fresh key is made."""
        self.issuer = issuer
        self.algorithm = algorithm
        self.kid = kid or f"dev-{secrets.token_hex(4)}"
        if private_key_pem is None:
            self.private_key, public_jwk = _new_key_pair(algorithm)
        else:
            loaded = serialization.load_pem_private_key(private_key_pem, password=None)
            if algorithm != "ES256" or not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError("a saved DevIssuer key must be an ES256 (P-256) key")
            self.private_key = loaded
            public_jwk = ECAlgorithm.to_jwk(loaded.public_key(), as_dict=True)
        self.public_jwk: dict[str, Any] = {
            **public_jwk,
            "kid": self.kid,
            "alg": algorithm,
            "use": "sig",
        }

    def private_key_pem(self) -> bytes:
        """The signing key as unencrypted PKCS#8 PEM, for a dev mesh to keep between runs."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def jwks(self) -> dict[str, Any]:
        """The public JWKS, as an issuer's ``jwks_uri`` would serve it."""
        return {"keys": [dict(self.public_jwk)]}

    def mint(
        self, claims: Mapping[str, Any] | bytes, *, headers: Mapping[str, Any] | None = None
    ) -> str:
        """Signs ``claims`` as given (``datetime`` values become NumericDates); ``bytes`` are
        signed verbatim. ``headers`` are added to (or override) ``kid`` and ``typ``."""
        if isinstance(claims, bytes):
            payload = claims
        else:
            as_json = {
                name: int(value.timestamp()) if isinstance(value, datetime) else value
                for name, value in claims.items()
            }
            payload = json.dumps(as_json, separators=(",", ":")).encode("utf-8")
        return jwt.PyJWS().encode(
            payload,
            self.private_key,
            algorithm=self.algorithm,
            headers={"kid": self.kid, "typ": "JWT", **(headers or {})},
        )

    def id_token(
        self,
        *,
        audience: str,
        pid: str,
        now: datetime,
        ial: IAL = IAL.IAL_2_3,
        aal: AAL = AAL.AAL_2_1,
        lifetime: timedelta = timedelta(minutes=5),
        subject: str | None = None,
        jti: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A well-formed ID token issued at ``now``, with a fresh ``jti`` unless one is given;
        ``extra_claims`` are added (a payment authorisation's ``payee`` and ``amount``)."""
        return self.mint(
            {
                "iss": self.issuer,
                "sub": subject or f"dev-subject-{secrets.token_hex(8)}",
                "aud": audience,
                "iat": now,
                "exp": now + lifetime,
                "jti": jti or secrets.token_hex(16),
                "pid": pid,
                "ial": ial.value,
                "aal": aal.value,
                **(extra_claims or {}),
            }
        )

    def __repr__(self) -> str:
        return f"DevIssuer({self.issuer!r}, algorithm={self.algorithm!r}, kid={self.kid!r})"

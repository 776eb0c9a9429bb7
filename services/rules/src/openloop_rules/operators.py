"""Who may change the rules: operators proving themselves with a signed bearer token.

An operator method carries ``authorization: Bearer <JWT>``: a JWS signed with EdDSA
(Ed25519) by a key the service trusts (``OPENLOOP_RULES_OPERATOR_KEYS``, key id to public
key PEM, chosen by the token's ``kid``), for audience ``openloop-rules``, with ``sub`` (the
person, recorded in the audit trail), ``role``, ``iat`` and ``exp`` (at most an hour apart).
PyJWT verifies the signature; the claims are checked here against the service clock, so
every refusal has a stable reason. Role ``rules-operator`` may do everything;
``rules-auditor`` may only read (rule sets, activations, simulations).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.timestamps import utc_now

AUDIENCE = "openloop-rules"
MAX_LIFETIME = timedelta(hours=1)
CLOCK_SKEW = timedelta(seconds=30)
MAX_TOKEN_LENGTH = 8192
_SUBJECT_LENGTH = 128


class Role(enum.StrEnum):
    OPERATOR = "rules-operator"
    AUDITOR = "rules-auditor"


READERS = (Role.OPERATOR, Role.AUDITOR)
WRITERS = (Role.OPERATOR,)


@dataclass(frozen=True)
class Operator:
    subject: str
    role: Role

    @property
    def actor(self) -> str:
        return f"operator:{self.subject}"


def _unauthenticated(reason: str, message: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.UNAUTHENTICATED,
        ErrorReason.ERROR_REASON_OPERATOR_NOT_AUTHENTICATED,
        message,
        {"token_reason": reason},
    )


def load_keys(pems: Mapping[str, str]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for kid, pem in pems.items():
        key = load_pem_public_key(pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise TypeError(f"operator key {kid!r} is not an Ed25519 public key")
        keys[kid] = key
    return keys


class OperatorVerifier:
    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        audience: str = AUDIENCE,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._keys = load_keys(keys)
        self._audience = audience
        self._clock = clock

    def require(
        self, metadata: Sequence[tuple[str, str | bytes]] | None, roles: Sequence[Role]
    ) -> Operator:
        """The operator calling, if their token is valid and their role one of ``roles``."""
        operator = self.verify(_bearer(metadata))
        if operator.role not in roles:
            raise DomainError(
                grpc.StatusCode.PERMISSION_DENIED,
                ErrorReason.ERROR_REASON_OPERATOR_NOT_AUTHORISED,
                f"role {operator.role.value} may not call this method",
                {"role": operator.role.value},
            )
        return operator

    def verify(self, token: str | None) -> Operator:
        if not token:
            raise _unauthenticated("TOKEN_MISSING", "an operator token is required")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _unauthenticated("TOKEN_MALFORMED", "the operator token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _unauthenticated("TOKEN_MALFORMED", "the operator token is malformed") from error
        key = self._keys.get(str(header.get("kid", "")))
        if header.get("alg") != "EdDSA" or key is None:
            raise _unauthenticated(
                "TOKEN_UNKNOWN_KEY", "the operator token is not signed by a trusted key"
            )
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                options={"verify_exp": False, "verify_iat": False, "verify_aud": False,
                         "verify_nbf": False},
            )  # fmt: skip
        except jwt.InvalidSignatureError as error:
            raise _unauthenticated(
                "TOKEN_BAD_SIGNATURE", "the operator token's signature is bad"
            ) from error
        except jwt.PyJWTError as error:
            raise _unauthenticated("TOKEN_MALFORMED", "the operator token is malformed") from error
        return self._check(claims)

    def _check(self, claims: Mapping[str, object]) -> Operator:
        for name in ("sub", "aud", "exp", "iat", "role"):
            if name not in claims:
                raise _unauthenticated("TOKEN_MISSING_CLAIM", f"the operator token has no {name!r}")
        audience = claims["aud"]
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in audiences:
            raise _unauthenticated("TOKEN_WRONG_AUDIENCE", f"the token is not for {self._audience}")
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise _unauthenticated("TOKEN_MALFORMED", "exp and iat must be numbers")
        now = self._clock()
        expires = datetime.fromtimestamp(exp, UTC)
        issued = datetime.fromtimestamp(iat, UTC)
        if expires <= now - CLOCK_SKEW:
            raise _unauthenticated("TOKEN_EXPIRED", "the operator token has expired")
        if issued > now + CLOCK_SKEW:
            raise _unauthenticated("TOKEN_NOT_YET_VALID", "the operator token is not valid yet")
        if expires - issued > MAX_LIFETIME:
            raise _unauthenticated(
                "TOKEN_LIFETIME_TOO_LONG", "operator tokens may live at most an hour"
            )
        subject, role = claims["sub"], claims["role"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _SUBJECT_LENGTH:
            raise _unauthenticated("TOKEN_MALFORMED", "sub must be a short string")
        if role not in {r.value for r in Role}:
            raise DomainError(
                grpc.StatusCode.PERMISSION_DENIED,
                ErrorReason.ERROR_REASON_OPERATOR_NOT_AUTHORISED,
                "the token's role may not use the rules service",
                {"role": str(role)[:64]},
            )
        return Operator(subject, Role(str(role)))


def _bearer(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def mint(
    private_key_pem: bytes,
    *,
    kid: str,
    subject: str,
    role: Role = Role.OPERATOR,
    now: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    audience: str = AUDIENCE,
) -> str:
    """A token for ``subject``: what the admin CLI and the dev mesh's seed send."""
    issued = now or utc_now()
    return jwt.encode(
        {
            "sub": subject,
            "role": role.value,
            "aud": audience,
            "iat": int(issued.timestamp()),
            "exp": int((issued + lifetime).timestamp()),
        },
        private_key_pem,
        algorithm="EdDSA",
        headers={"kid": kid},
    )

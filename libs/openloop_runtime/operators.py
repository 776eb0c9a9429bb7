"""Who may administer a service: operators proving themselves with a signed bearer token.

An operator method carries ``authorization: Bearer <JWT>``: a JWS signed with EdDSA
(Ed25519) by a key the service trusts (``OPENLOOP_<SERVICE>_OPERATOR_KEYS``, key id to
public key PEM, chosen by the token's ``kid``), for the service's own audience
(``openloop-rules``, ``openloop-identity``), with ``sub`` (the person, recorded by the
service), ``role``, ``iat`` and ``exp`` (at most an hour apart). The audience binds a token
to one service, so a token an operator holds for the rules service opens nothing in
identity, and the roles are the service's own, so a role that means something in one
service means nothing in another.

PyJWT verifies the signature; the claims are checked here against the service clock, so
every refusal has a stable reason: ``UNAUTHENTICATED`` with ``OPERATOR_NOT_AUTHENTICATED``
and a ``token_reason`` when the token proves nothing, ``PERMISSION_DENIED`` with
``OPERATOR_NOT_AUTHORISED`` when it proves someone whose role may not call the method.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.timestamps import utc_now

MAX_LIFETIME = timedelta(hours=1)
CLOCK_SKEW = timedelta(seconds=30)
MAX_TOKEN_LENGTH = 8192
DEFAULT_TOKEN_LIFETIME = timedelta(minutes=5)
_SUBJECT_LENGTH = 128

Metadata = Sequence[tuple[str, str | bytes]]
"""A call's invocation metadata, as ``grpc.aio.ServicerContext.invocation_metadata`` gives it."""


@dataclass(frozen=True)
class Operator:
    """The person a valid token speaks for, and the role it gives them."""

    subject: str
    role: str

    @property
    def actor(self) -> str:
        """How audit trails name the operator (never a participant or a service)."""
        return f"operator:{self.subject}"


def _unauthenticated(reason: str, message: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.UNAUTHENTICATED,
        ErrorReason.ERROR_REASON_OPERATOR_NOT_AUTHENTICATED,
        message,
        {"token_reason": reason},
    )


def _not_authorised(message: str, role: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.PERMISSION_DENIED,
        ErrorReason.ERROR_REASON_OPERATOR_NOT_AUTHORISED,
        message,
        {"role": role[:64]},
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
    """One service's check of operator tokens: its trusted keys, its audience, its roles."""

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        audience: str,
        roles: Iterable[str],
        service: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._keys = load_keys(keys)
        self._audience = audience
        self._roles = frozenset(str(role) for role in roles)
        self._service = service
        self._clock = clock

    def require(self, metadata: Metadata | None, roles: Collection[str]) -> Operator:
        """The operator calling, if their token is valid and their role one of ``roles``."""
        operator = self.verify(bearer_token(metadata))
        if operator.role not in roles:
            raise _not_authorised(f"role {operator.role} may not call this method", operator.role)
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
        if not isinstance(role, str) or role not in self._roles:
            raise _not_authorised(
                f"the token's role may not use the {self._service} service", str(role)
            )
        return Operator(subject, role)


def bearer_token(metadata: Metadata | None) -> str | None:
    """The bearer token of a call's ``authorization`` metadata, if it has one."""
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
    role: str,
    audience: str,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
) -> str:
    """A token for ``subject``: what the operators' tools and the dev mesh send.

    Short-lived on purpose (five minutes by default): a token that leaks into a shell
    history or a log is soon worth nothing, and tools mint a new one per run."""
    issued = now or utc_now()
    return jwt.encode(
        {
            "sub": subject,
            "role": str(role),
            "aud": audience,
            "iat": int(issued.timestamp()),
            "exp": int((issued + lifetime).timestamp()),
        },
        private_key_pem,
        algorithm="EdDSA",
        headers={"kid": kid},
    )


@dataclass(frozen=True)
class OperatorKey:
    """An operator's Ed25519 key: the private half (PKCS#8 PEM) signs their tokens
    (:func:`mint`), and a service trusts the public half under ``kid``
    (:meth:`trusted`, one entry of ``OPENLOOP_<SERVICE>_OPERATOR_KEYS``)."""

    kid: str
    private_pem: bytes

    @classmethod
    def generate(cls, kid: str) -> OperatorKey:
        private = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(kid, private)

    def public_pem(self) -> str:
        key = serialization.load_pem_private_key(self.private_pem, None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("an operator key must be Ed25519")
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def trusted(self) -> dict[str, str]:
        """What a service is configured with to trust this key: ``{kid: public PEM}``."""
        return {self.kid: self.public_pem()}

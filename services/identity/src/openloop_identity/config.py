"""Identity's settings, read from ``OPENLOOP_IDENTITY_*`` environment variables."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings

DEVELOPMENT_CITIZEN_ID_HMAC_KEY = (
    "openloop-development-only-citizen-id-key-do-not-use-in-production"
)
"""Lets the devstack and tests run with no secret configured. Tokens made with it are
only as private as this public string: a deployment must set its own key."""

DEVELOPMENT_PII_KEYRING = "dev1:b3Blbmxvb3AtZGV2ZWxvcG1lbnQtb25seS1rZWshISE="
"""A public key-encryption key so the devstack runs with no secret configured: personal
data sealed under it is not protected. A deployment sets OPENLOOP_IDENTITY_PII_KEYRING."""

MIN_HMAC_KEY_LENGTH = 32


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLOOP_IDENTITY_", extra="ignore", frozen=True)

    port: int = Field(default=50051, ge=0, le=65535)
    """Identity's well-known port in the mesh."""
    citizen_id_hmac_key: SecretStr = SecretStr(DEVELOPMENT_CITIZEN_ID_HMAC_KEY)
    """Key of the HMAC-SHA256 that turns a citizen ID into the token we store. The same
    key must be used by every replica for as long as its tokens are in the database:
    changing it makes every enrolled citizen unfindable by citizen ID."""

    pii_keyring: SecretStr = SecretStr(DEVELOPMENT_PII_KEYRING)
    """Key-encryption keys for personal data, ``"k2:<base64>,k1:<base64>"`` with the active
    key first (see :mod:`openloop_identity.protection.keyring`)."""
    pii_rewrap_interval_seconds: float = Field(default=60.0, gt=0)
    """How often records not under the active key-encryption key are re-wrapped."""
    assertion_prune_interval_seconds: float = Field(default=60.0, gt=0)
    """How often spent identity assertions that have expired are forgotten."""
    trusted_issuers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Identity providers whose ID tokens enrol citizens: issuer URL (``iss``) to its JWKS,
    as JSON. With none, every enrolment is refused."""
    participant_uri_prefix: str = "spiffe://openloop.dev/participants/"
    """What a participant's client certificate names as its URI SAN, before the participant
    id: the identity the gateway reads at the edge (its PARTICIPANT_URI_PREFIX setting)."""
    settlement_target: str = ""
    """Where settlement listens; closing a participant asks it for the net position. Unset,
    no participant can close."""
    require_payer_authorization: bool = True
    """Refuse a payment whose payer has not authorised it (VerifyPaymentParties without
    payer_authorization). Turning it off is for a migration window only."""
    require_payment_binding: bool = True
    """Refuse a payer's authorisation that does not name the payee and amount it authorises
    (the ``payee`` and ``amount`` claims; see ``payment_binding``), and a VerifyPaymentParties
    without the amount. Claims a token does carry are checked whatever this says. On by
    default, as strong customer authentication requires the link; off only while banks'
    apps are being upgraded to sign them."""
    assertion_audience: str = "openloop"
    """The ``aud`` an identity assertion must be issued for: the platform's client ID."""
    operator_keys: dict[str, str] = Field(default_factory=dict)
    """Public keys (Ed25519, PEM) that sign operators' tokens, by key id (``kid``), as JSON.
    None: every operator method (participants, credentials, enrolment, imports, merchants,
    directory look-ups, exports and erasures) is refused; the gateway's calls still work."""
    operator_audience: str = "openloop-identity"
    """The ``aud`` an operator token must carry: one service's token opens no other."""
    assurance_policy: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Minimum levels per purpose over the defaults (enrolment IAL 2.3, payment AAL 2.1), for
    example ``{"enrolment": {"min_ial": "3"}}``."""

    @field_validator("citizen_id_hmac_key")
    @classmethod
    def _long_enough(cls, key: SecretStr) -> SecretStr:
        if len(key.get_secret_value()) < MIN_HMAC_KEY_LENGTH:
            raise ValueError(
                f"citizen_id_hmac_key must be at least {MIN_HMAC_KEY_LENGTH} characters"
            )
        return key

    @property
    def uses_development_hmac_key(self) -> bool:
        return self.citizen_id_hmac_key.get_secret_value() == DEVELOPMENT_CITIZEN_ID_HMAC_KEY

    @property
    def uses_development_pii_keyring(self) -> bool:
        return DEVELOPMENT_PII_KEYRING in self.pii_keyring.get_secret_value()

"""Identity's settings, read from ``OPENLOOP_IDENTITY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings

DEVELOPMENT_CITIZEN_ID_HMAC_KEY = (
    "openloop-development-only-citizen-id-key-do-not-use-in-production"
)
"""Lets the devstack and tests run with no secret configured. Tokens made with it are
only as private as this public string: a deployment must set its own key."""

MIN_HMAC_KEY_LENGTH = 32


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLOOP_IDENTITY_", extra="ignore", frozen=True)

    port: int = Field(default=50051, ge=0, le=65535)
    """Identity's well-known port in the mesh."""
    citizen_id_hmac_key: SecretStr = SecretStr(DEVELOPMENT_CITIZEN_ID_HMAC_KEY)
    """Key of the HMAC-SHA256 that turns a citizen ID into the token we store. The same
    key must be used by every replica for as long as its tokens are in the database:
    changing it makes every enrolled citizen unfindable by citizen ID."""

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

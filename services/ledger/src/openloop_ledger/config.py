"""Settings of the ledger, read from ``OPENLOOP_LEDGER_*``."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from openloop_ledger.merkle.note import Signer
from openloop_runtime.settings import ServiceSettings

DEVELOPMENT_LEAF_KEY = "openloop-development-only-ledger-leaf-key-do-not-use-in-production"
"""Lets the devstack and tests run with no secret configured. Leaves hashed under it
hide nothing: a deployment must set its own key (and give it to its auditors)."""

DEVELOPMENT_LOG_SIGNING_KEY = (
    "PRIVATE+KEY+openloop.dev/ledger+4858b3a3+AeShSLjB0eHokvTxZkUwHtoSgne1qjyHZVhsgCI382LU"
)
"""The devstack's checkpoint key, derived from a public string: checkpoints it signs
prove nothing. Its verifier key is ``DEVELOPMENT_LOG_VERIFIER_KEY``."""

DEVELOPMENT_LOG_VERIFIER_KEY = (
    "openloop.dev/ledger+4858b3a3+AeVPq87Yzlrh44F9FxVS+Tl12ZLE5LcwGv6Clfrdh4Qg"
)

MIN_KEY_LENGTH = 32


class LedgerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLOOP_LEDGER_", extra="ignore", frozen=True)

    port: int = Field(default=50053, ge=0, le=65535)
    """The ledger's well-known port in the mesh; 0 picks a free one (tests)."""
    leaf_key: SecretStr = SecretStr(DEVELOPMENT_LEAF_KEY)
    """HMAC key for the account ids and user data in Merkle leaves and for the account rows'
    MACs. Fixed for the life of the log: the verifier needs it to recompute both."""
    log_signing_key: SecretStr = SecretStr(DEVELOPMENT_LOG_SIGNING_KEY)
    """Ed25519 key that signs checkpoints, as a C2SP note signer key
    (``PRIVATE+KEY+<origin>+<hash>+<base64>``). Its name is the log's origin. Only a
    process that seals reads it: a server with ``sealer_in_process=False`` needs neither
    this nor ``log_cosigning_keys``, so the private key stays out of its pods."""
    log_cosigning_keys: tuple[SecretStr, ...] = ()
    """More keys of the same name that sign every checkpoint too, for a key rotation: with
    the new key as ``log_signing_key`` and the old one here, clients that still pin the old
    verifier key keep verifying until they have the new one. A JSON list in the
    environment."""
    batch_max_events: int = Field(default=16_384, ge=1)
    """Transfers applied in one database transaction, summed over the requests in it."""
    batch_pipeline_min_events: int = Field(default=500, ge=1)
    """Queued transfers that start a batch while the one before it still commits (see
    :mod:`openloop_ledger.batcher`); fewer wait for that commit and join the next batch."""
    sealer_in_process: bool = True
    """Whether this server also seals the Merkle log (see :mod:`openloop_ledger.sealer`).
    False where the sealer runs as a process of its own (``python -m openloop_ledger
    seal``), as in Kubernetes: sealing then takes no CPU from this server's batches. With
    no sealer running anywhere, no checkpoint is published."""
    checkpoint_interval_seconds: float = Field(default=0.25, gt=0)
    """The sealer checks for new journal entries at least this often."""
    sealer_timeout_seconds: float = Field(default=30.0, gt=0)
    """A seal that takes longer, or a sealer's database session idle this long, ends that
    sealer's session and so its lead (see :mod:`openloop_ledger.sealer`): another sealer
    takes over within this of a leader's host vanishing. Well above the longest seal
    (hashing a chunk of 100,000 leaves takes about a second) and the interval."""
    expiry_interval_seconds: float = Field(default=1.0, gt=0)
    """Pending transfers are voided at most this long after their timeout passes."""

    @field_validator("leaf_key")
    @classmethod
    def _long_enough(cls, key: SecretStr) -> SecretStr:
        if len(key.get_secret_value()) < MIN_KEY_LENGTH:
            raise ValueError(f"leaf_key must be at least {MIN_KEY_LENGTH} characters")
        return key

    @model_validator(mode="after")
    def _one_origin(self) -> LedgerSettings:
        """Every checkpoint key parses, and the co-signing keys carry the log's name."""
        origin = Signer.from_key(self.log_signing_key.get_secret_value()).name
        for key in self.log_cosigning_keys:
            name = Signer.from_key(key.get_secret_value()).name
            if name != origin:
                raise ValueError(
                    f"log_cosigning_keys: a key named {name!r} cannot co-sign the checkpoints "
                    f"of log {origin!r}; a rotated key keeps the log's name"
                )
        return self

    @model_validator(mode="after")
    def _timeout_beyond_interval(self) -> LedgerSettings:
        """A live leader looks every interval; a timeout within it would end every lead."""
        if self.sealer_timeout_seconds <= self.checkpoint_interval_seconds:
            raise ValueError(
                "sealer_timeout_seconds must be longer than checkpoint_interval_seconds"
            )
        return self

    def checkpoint_signers(self) -> list[Signer]:
        """The signing key, then the co-signing keys."""
        keys = [self.log_signing_key, *self.log_cosigning_keys]
        return [Signer.from_key(key.get_secret_value()) for key in keys]

    def uses_development_keys(self, *, signs: bool) -> bool:
        """Whether a development key is in use: the leaf key, or the signing key in a
        process that ``signs`` checkpoints (a server that does not seal never reads it)."""
        return self.leaf_key.get_secret_value() == DEVELOPMENT_LEAF_KEY or (
            signs and self.log_signing_key.get_secret_value() == DEVELOPMENT_LOG_SIGNING_KEY
        )

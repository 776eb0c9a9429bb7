"""Gateway settings (``OPENLOOP_GATEWAY_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLOOP_GATEWAY_", extra="ignore", frozen=True)

    port: int = 50055
    identity_target: str = "127.0.0.1:50051"
    rules_target: str = "127.0.0.1:50052"
    ledger_target: str = "127.0.0.1:50053"
    settlement_target: str = "127.0.0.1:50054"
    upstream_timeout_seconds: float = Field(default=3.0, gt=0)
    """Deadline of every call to an upstream service."""
    participant_uri_prefix: str = "spiffe://openloop.dev/participants/"
    """Client-certificate URI SAN prefix; the rest of the URI is the participant id."""
    reconcile_interval_seconds: float = Field(default=5.0, gt=0)
    """How often pending payments are driven to a final state."""
    reconcile_after_seconds: float = Field(default=10.0, ge=0)
    """A pending payment untouched this long is taken over by the reconciler."""
    abandon_unbegun_move_after_seconds: float = Field(default=600.0, gt=0)
    """A wallet move whose request died before identity began it is FAILED after this long.
    It must stay far above upstream_timeout_seconds: a request still waiting on identity must
    never see its move given up."""
    require_registered_client_certificate: bool = True
    """Accept only client certificates the participant registered with identity and has not
    revoked (on top of the edge's CA check). Off only where participants have not registered
    their certificates yet."""
    certificate_cache_seconds: float = Field(default=5.0, gt=0)
    """How long a participant's registered certificates are reused: a revocation takes effect
    on every replica within this time."""

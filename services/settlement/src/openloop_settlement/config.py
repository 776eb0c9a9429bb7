"""Settings of settlement, read from ``OPENLOOP_SETTLEMENT_*``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings


class SettlementSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPENLOOP_SETTLEMENT_", extra="ignore", frozen=True
    )

    port: int = Field(default=50054, ge=0, le=65535)
    """Settlement's well-known port in the mesh; 0 picks a free one (tests)."""
    operator_keys: dict[str, str] = Field(default_factory=dict)
    """Public keys (Ed25519, PEM) that sign operators' tokens, by key id (``kid``), as JSON.
    None: every operator method (closing and settling cycles, every report) is refused; the
    gateway's and identity's calls still work."""
    operator_audience: str = "openloop-settlement"
    """The ``aud`` an operator token must carry: one service's token opens no other."""

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

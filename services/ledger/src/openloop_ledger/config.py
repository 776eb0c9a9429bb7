"""Settings of the ledger, read from ``OPENLOOP_LEDGER_*``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings


class LedgerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLOOP_LEDGER_", extra="ignore", frozen=True)

    port: int = Field(default=50053, ge=0, le=65535)
    """The ledger's well-known port in the mesh; 0 picks a free one (tests)."""

"""The rules service's settings, read from ``OPENLOOP_RULES_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings


class RulesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLOOP_RULES_", extra="ignore", frozen=True)

    port: int = Field(default=50052, ge=0, le=65535)
    """The rules service's well-known port in the mesh."""
    default_rule_set_version: str = "digital-wallet-2024.1"
    """The shipped rule set (``rulesets/<version>.yaml``) stored at startup when absent and
    activated when nothing is active yet, so a fresh environment decides from its first call."""
    seed_default_rule_set: bool = True
    """Off leaves the database as it is: with nothing active every payment is denied."""

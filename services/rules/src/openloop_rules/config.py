"""The rules service's settings, read from ``OPENLOOP_RULES_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings


class RulesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLOOP_RULES_", extra="ignore", frozen=True)

    port: int = Field(default=50052, ge=0, le=65535)
    """The rules service's well-known port in the mesh."""
    default_rule_set_version: str = "digital-wallet-2025.2"
    """The shipped rule set (``rulesets/<version>.yaml``) stored at startup when absent and
    activated when its program has no activation yet, so a fresh environment decides from
    its first call. An environment with activations is left as it is."""
    seed_default_rule_set: bool = True
    """Off leaves the database as it is: with nothing active every decision is a deny."""
    default_program: str = "digital-wallet"
    """The program a request that names none is decided for."""
    operator_keys: dict[str, str] = Field(default_factory=dict)
    """Public keys (Ed25519, PEM) that sign operators' tokens, by key id (``kid``), as JSON.
    None: every operator method is refused."""
    operator_audience: str = "openloop-rules"
    activation_margin_seconds: float = Field(default=2.0, ge=0)
    """How far ahead of now an activation must take effect, so that every replica has
    loaded it first (keep it above twice the poll interval)."""
    schedule_poll_seconds: float = Field(default=0.5, gt=0)
    """How often a replica looks for new activations."""
    max_batch: int = Field(default=10_000, ge=1)
    """Most cases in one EvaluateBatch or SimulateRuleSet."""
    record_capacity: int = Field(default=100, ge=0)
    """Decisions recorded per interval at most: the latest ones; older ones waiting are
    dropped, so recording costs the same at any load and never blocks a decision."""
    record_keep: int = Field(default=10_000, ge=1)
    """Recorded decisions kept for SimulateRuleSet; older ones are deleted."""
    record_interval_seconds: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _margin_covers_polling(self) -> RulesSettings:
        if self.activation_margin_seconds and (
            self.activation_margin_seconds < 2 * self.schedule_poll_seconds
        ):
            raise ValueError("activation_margin_seconds must be at least twice the poll interval")
        return self

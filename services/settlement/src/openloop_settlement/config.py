"""Settings of settlement, read from ``OPENLOOP_SETTLEMENT_*``."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from openloop_runtime.settings import ServiceSettings
from openloop_settlement.cutoffs import CutoffSchedule, parse_times, parse_zone


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
    cutoff_times: tuple[str, ...] = ()
    """Local times of day (``"HH:MM"``, 24-hour, in ``cutoff_timezone``) at which settlement
    closes the OPEN cycle itself, as a JSON list: ``["23:00"]``, or several windows a day.
    None (the default): cycles close only when an operator closes them."""
    cutoff_timezone: str = "Asia/Bangkok"
    """The IANA zone whose clocks ``cutoff_times`` are read on."""

    @field_validator("cutoff_times")
    @classmethod
    def _cutoff_times_are_local_times(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{t:%H:%M}" for t in parse_times(value))

    @field_validator("cutoff_timezone")
    @classmethod
    def _cutoff_timezone_is_known(cls, value: str) -> str:
        parse_zone(value)
        return value

    def cutoff_schedule(self) -> CutoffSchedule:
        return CutoffSchedule.of(self.cutoff_times, self.cutoff_timezone)

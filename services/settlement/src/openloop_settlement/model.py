"""Settlement's values, free of protobuf and SQL. Amounts are int satang, positions signed."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """One ledger transfer as settlement sees it; ``transfer_id`` is its idempotency key."""

    transfer_id: str
    debit_participant_id: str
    """The participant hosting the debited account: it owes the amount."""
    credit_participant_id: str
    """The participant hosting the credited account: it is owed the amount."""
    amount: int

    @property
    def inter_participant(self) -> bool:
        """A transfer inside one participant's books moves no money between banks."""
        return self.debit_participant_id != self.credit_participant_id


@dataclass(frozen=True, slots=True)
class Obligation:
    record: TransferRecord
    record_time: datetime
    cycle_id: int
    """The cycle that was OPEN when the transfer was recorded; it never changes."""


@dataclass(frozen=True, slots=True)
class Position:
    """A participant's lifetime position: the sum of its positions over every cycle."""

    participant_id: str
    net_position: int
    """Satang the platform owes the participant (positive) or it owes the platform (negative)."""
    transfer_count: int
    update_time: datetime | None
    """``None`` for a participant no inter-participant transfer has touched yet."""
    unsettled_position: int = 0
    """The part of ``net_position`` in cycles not yet SETTLED."""
    unsettled_cycle_count: int = 0
    """Cycles not yet SETTLED in which the participant's position is not zero."""


class CycleState(enum.StrEnum):
    """OPEN -> CLOSED -> SETTLED, never backwards; exactly one cycle is OPEN at a time."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"
    SETTLED = "SETTLED"


@dataclass(frozen=True, slots=True)
class SettlementCycle:
    cycle_id: int
    state: CycleState
    open_time: datetime
    close_time: datetime | None
    settle_time: datetime | None
    close_request_id: str | None
    """The request that closed the cycle: its retry is answered with this cycle."""
    settle_request_id: str | None
    closed_by: str | None
    """Who closed the cycle (``operator:<subject>``, or ``scheduler:cutoff`` for a scheduled
    cut-off); None for cycles closed before it was recorded."""
    settled_by: str | None
    """Who marked the cycle SETTLED, likewise."""
    cutoff_time: datetime | None = None
    """The scheduled cut-off the cycle was closed for; None unless the scheduler closed it."""


@dataclass(frozen=True, slots=True)
class CyclePosition:
    """A participant's net position within one cycle: what that cycle's settlement pays."""

    cycle_id: int
    participant_id: str
    net_position: int
    transfer_count: int
    update_time: datetime | None
    """``None`` for a participant the cycle's transfers did not touch."""


@dataclass(frozen=True, slots=True)
class ObligationKey:
    """Where an obligation stands in listing order: by cycle, then by transfer id."""

    cycle_id: int
    transfer_id: str

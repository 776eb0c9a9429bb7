"""Settlement's values, free of protobuf and SQL. Amounts are int satang, positions signed."""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Position:
    participant_id: str
    net_position: int
    """Satang the platform owes the participant (positive) or it owes the platform (negative)."""
    transfer_count: int
    update_time: datetime | None
    """``None`` for a participant no inter-participant transfer has touched yet."""

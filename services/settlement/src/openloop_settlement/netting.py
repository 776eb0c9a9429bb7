"""How one transfer changes the participants' net positions. Pure, so it is tested alone."""

from __future__ import annotations

from dataclasses import dataclass

from openloop_settlement.model import Position, TransferRecord


@dataclass(frozen=True, slots=True)
class PositionChange:
    participant_id: str
    delta: int
    """Signed satang added to the participant's net position."""


def position_changes(record: TransferRecord) -> list[PositionChange]:
    """The debit side goes down and the credit side up by the amount, so the changes sum to
    zero; none when both sides are one participant. Sorted by participant: the order the
    store locks positions in, so two transfers never wait on each other in a cycle."""
    if not record.inter_participant:
        return []
    changes = [
        PositionChange(record.debit_participant_id, -record.amount),
        PositionChange(record.credit_participant_id, record.amount),
    ]
    return sorted(changes, key=lambda change: change.participant_id)


def zero_position(participant_id: str) -> Position:
    """Where a participant stands before its first inter-participant transfer."""
    return Position(participant_id, net_position=0, transfer_count=0, update_time=None)

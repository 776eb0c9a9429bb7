"""How one transfer changes the participants' net positions. Pure, so it is tested alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openloop_settlement.model import CyclePosition, Position, TransferRecord

POSITION_MIN = -(2**63)
POSITION_MAX = 2**63 - 1
"""What a position holds: a signed 64-bit number of satang (BIGINT in the database)."""


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


@dataclass(frozen=True, slots=True)
class PositionAtLimit:
    """The position a transfer could not move: a participant's in ``cycle_id``, or its
    lifetime one when ``cycle_id`` is None."""

    participant_id: str
    cycle_id: int | None


def _headroom(current: int, delta: int) -> int:
    """How far ``current + delta`` stays inside a position's range; negative: outside."""
    moved = current + delta
    return POSITION_MAX - moved if delta > 0 else moved - POSITION_MIN


def position_at_limit(
    changes: Sequence[PositionChange],
    cycle_id: int,
    cycle_positions: Mapping[str, int],
    lifetime_positions: Mapping[str, int],
) -> PositionAtLimit:
    """Which position a transfer the database refused as out of range would have overflowed,
    given the positions as they stand (a participant with no row stands at zero).

    Both kinds can: a lifetime position is the sum of the cycle ones, but not the larger,
    since a bank that paid in one cycle and is paid in the next can stand near zero over
    its lifetime while its OPEN cycle's position is at the limit. The positions are read
    after the refused transaction rolled back, so a transfer recorded in between could
    have moved them; the position left with the least headroom is named, which is the
    overflowing one whenever nothing moved (the cycle's first on a tie: the store moves it
    first).
    """
    if not changes:
        raise ValueError("a transfer that moves no position cannot overflow one")
    candidates = [
        (_headroom(cycle_positions.get(c.participant_id, 0), c.delta), 0, c.participant_id)
        for c in changes
    ] + [
        (_headroom(lifetime_positions.get(c.participant_id, 0), c.delta), 1, c.participant_id)
        for c in changes
    ]
    _, lifetime, participant_id = min(candidates)
    return PositionAtLimit(participant_id, None if lifetime else cycle_id)


def zero_position(participant_id: str) -> Position:
    """Where a participant stands before its first inter-participant transfer."""
    return Position(participant_id, net_position=0, transfer_count=0, update_time=None)


def zero_cycle_position(cycle_id: int, participant_id: str) -> CyclePosition:
    """Where a participant stands in a cycle none of whose transfers touched it."""
    return CyclePosition(cycle_id, participant_id, 0, 0, None)


@dataclass(frozen=True, slots=True)
class Instruction:
    """One payment of a cycle's settlement: ``payer`` pays ``payee`` ``amount`` satang."""

    payer: str
    payee: str
    amount: int


def settlement_instructions(net_positions: dict[str, int]) -> list[Instruction]:
    """Who pays whom to settle a cycle whose net positions are given (they must sum to zero).

    Through a central settlement account each net debtor simply pays its debit in and each
    net creditor is paid its credit out. Where banks settle with each other instead, this
    pairs the largest debtor with the largest creditor until all are square: at most one
    payment fewer than the participants with a position, every amount positive. Ties are
    broken by participant id, so the same positions always give the same instructions.
    """
    if sum(net_positions.values()) != 0:
        raise ValueError("a cycle's net positions must sum to zero")
    owing = sorted(
        ((-v, p) for p, v in net_positions.items() if v < 0), key=lambda x: (-x[0], x[1])
    )
    owed = sorted(((v, p) for p, v in net_positions.items() if v > 0), key=lambda x: (-x[0], x[1]))
    instructions: list[Instruction] = []
    i = j = 0
    debit = owing[0][0] if owing else 0
    credit = owed[0][0] if owed else 0
    while i < len(owing) and j < len(owed):
        amount = min(debit, credit)
        instructions.append(Instruction(owing[i][1], owed[j][1], amount))
        debit -= amount
        credit -= amount
        if debit == 0:
            i += 1
            debit = owing[i][0] if i < len(owing) else 0
        if credit == 0:
            j += 1
            credit = owed[j][0] if j < len(owed) else 0
    return instructions

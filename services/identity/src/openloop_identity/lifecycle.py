"""A participant's life: ACTIVE, SUSPENDED, back to ACTIVE, and at last CLOSED.

Suspension stops the participant acting and being paid at once (every payment checks both
hosts are ACTIVE). Closing is final, so it is allowed only from SUSPENDED — no new payments
can then move its position between the check and the close — and only while settlement
reports nothing unsettled: no settlement cycle not yet SETTLED holds a non-zero position
for it (``positions.py`` says why that figure and not the lifetime position).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.model import Participant, ParticipantState
from openloop_identity.positions import PositionCheck
from openloop_identity.store import participants
from openloop_identity.store.audit import AuditAction
from openloop_runtime.operators import Operator

ACTIVE = ParticipantState.ACTIVE
SUSPENDED = ParticipantState.SUSPENDED
CLOSED = ParticipantState.CLOSED


class ParticipantLifecycle:
    def __init__(self, engine: AsyncEngine, positions: PositionCheck | None) -> None:
        self._engine = engine
        self._positions = positions

    async def suspend(self, participant_id: str, operator: Operator) -> Participant:
        return await participants.transition(
            self._engine,
            participant_id,
            to=SUSPENDED,
            allowed_from={ACTIVE, SUSPENDED},
            operator=operator,
            action=AuditAction.SUSPEND_PARTICIPANT,
        )

    async def reactivate(self, participant_id: str, operator: Operator) -> Participant:
        return await participants.transition(
            self._engine,
            participant_id,
            to=ACTIVE,
            allowed_from={SUSPENDED, ACTIVE},
            operator=operator,
            action=AuditAction.REACTIVATE_PARTICIPANT,
        )

    async def close(self, participant_id: str, operator: Operator) -> Participant:
        current = await participants.get_participant(self._engine, participant_id)
        if current.state is CLOSED:
            return current
        if current.state is not SUSPENDED:
            raise errors.participant_state_conflict(
                participant_id, current.state.value, "suspend it before closing it"
            )
        if self._positions is None:
            raise errors.positions_unknown()
        unsettled = await self._positions.unsettled(participant_id)
        if not unsettled.nothing_due:
            raise errors.unsettled_position(
                participant_id, unsettled.net_position_satang, unsettled.cycles
            )
        return await participants.transition(
            self._engine,
            participant_id,
            to=CLOSED,
            allowed_from={SUSPENDED, CLOSED},
            operator=operator,
            action=AuditAction.CLOSE_PARTICIPANT,
        )

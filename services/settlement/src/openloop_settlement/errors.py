"""Settlement's refusals that name a resource or a state, each with its status and reason."""

from __future__ import annotations

import grpc

from openloop_runtime.errors import DomainError, ErrorReason, not_found
from openloop_settlement.model import CycleState
from openloop_settlement.netting import PositionAtLimit
from openloop_settlement.render import cycle_name, participant_name


def cycle_not_found(cycle_id: int) -> DomainError:
    return not_found(ErrorReason.ERROR_REASON_SETTLEMENT_CYCLE_NOT_FOUND, cycle_name(cycle_id))


def obligation_not_found(name: str) -> DomainError:
    return not_found(ErrorReason.ERROR_REASON_OBLIGATION_NOT_FOUND, name)


def cycle_state_conflict(cycle_id: int, state: CycleState, message: str) -> DomainError:
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_SETTLEMENT_CYCLE_STATE_CONFLICT,
        f"{cycle_name(cycle_id)} is {state.value}: {message}",
        {"resource": cycle_name(cycle_id), "state": state.value},
    )


def request_id_reused(request_id: str, cycle_id: int | None) -> DomainError:
    """The idempotency key already answered a change of another cycle: a retry must name the
    cycle it meant, and a new change needs a new key."""
    metadata = {"field": "request_id", "request_id": request_id}
    if cycle_id is not None:
        metadata["resource"] = cycle_name(cycle_id)
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
        "request_id was used for another settlement cycle",
        metadata,
    )


def position_limit_exceeded(at_limit: PositionAtLimit) -> DomainError:
    """The transfer is well formed (the same one is recorded in another state) but would take
    a position beyond 64 bits of satang: a precondition on the stored positions, not a bad
    argument, so neither the caller nor its alerting reads it as a malformed request."""
    participant = participant_name(at_limit.participant_id)
    if at_limit.cycle_id is None:
        resource = f"{participant}/position"
    else:
        resource = f"{cycle_name(at_limit.cycle_id)}/positions/{at_limit.participant_id}"
    return DomainError(
        grpc.StatusCode.FAILED_PRECONDITION,
        ErrorReason.ERROR_REASON_POSITION_LIMIT_EXCEEDED,
        f"the transfer would take {resource} beyond 64 bits of satang; nothing was recorded",
        {"participant": participant, "resource": resource},
    )

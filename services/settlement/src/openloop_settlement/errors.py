"""Settlement's refusals that name a resource or a state, each with its status and reason."""

from __future__ import annotations

import grpc

from openloop_runtime.errors import DomainError, ErrorReason, not_found
from openloop_settlement.model import CycleState
from openloop_settlement.render import cycle_name


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

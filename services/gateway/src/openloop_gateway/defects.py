"""The platform's own defects while money moves: INTERNAL with a trace id, never the bank's
fault, and never a final state — the payment or move stays pending for an engineer."""

from __future__ import annotations

import grpc

from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.telemetry import current_trace_id


def pending_defect(upstream: str, what: str, resource_key: str, resource: str) -> DomainError:
    """``what`` ("the payment") could not complete because ``upstream`` answered in a way
    that is our defect; ``resource_key`` / ``resource`` name it in the ErrorInfo metadata."""
    return DomainError(
        grpc.StatusCode.INTERNAL,
        ErrorReason.ERROR_REASON_INTERNAL_ERROR,
        f"{what} could not be completed; it stays pending; quote the trace id to support",
        {"upstream": upstream, resource_key: resource, "trace_id": current_trace_id()},
    )

"""Channels to upstream services, and the translation of their failures.

One channel per upstream per process, created inside the event loop; its tracing
interceptors (:mod:`openloop_runtime.tracing`) make a CLIENT span of every call and send
its W3C trace context with it.
"""

from __future__ import annotations

import grpc

from openloop_runtime.errors import DomainError, ErrorReason, error_info_of
from openloop_runtime.telemetry import current_trace_id
from openloop_runtime.tracing import client_interceptors

_CLIENT_STATUS_PASSTHROUGH = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.ABORTED,
    }
)
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    }
)


def open_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        target,
        interceptors=client_interceptors(),
        options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.enable_retries", 1),
            # Reconnect quickly after an upstream restarts (defaults back off to 120 s).
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # Kubernetes Services are headless: spread calls over every replica.
            ("grpc.lb_policy_name", "round_robin"),
        ],
    )


def upstream_unavailable(upstream: str) -> DomainError:
    """``upstream`` is down or slow (also when no status came back at all, as when a
    stream ended or a wait timed out): UNAVAILABLE, safe to retry."""
    return DomainError(
        grpc.StatusCode.UNAVAILABLE,
        ErrorReason.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        f"{upstream} is unavailable; retry with the same idempotency key",
        {"upstream": upstream},
    )


def upstream_error(upstream: str, error: grpc.aio.AioRpcError) -> DomainError:
    """What to tell our caller when a call to ``upstream`` failed.

    A client mistake the upstream diagnosed (NOT_FOUND, INVALID_ARGUMENT, ...)
    passes through with the upstream's own ErrorInfo. An upstream that is down or
    slow is UNAVAILABLE, safe to retry. Anything else is our defect: INTERNAL.
    """
    code = error.code()
    info = error_info_of(error)
    if code in _CLIENT_STATUS_PASSTHROUGH and info is not None:
        return DomainError.from_wire(
            code, info.reason, error.details() or "", dict(info.metadata), domain=info.domain
        )
    if code in _RETRYABLE:
        return upstream_unavailable(upstream)
    return DomainError(
        grpc.StatusCode.INTERNAL,
        ErrorReason.ERROR_REASON_INTERNAL_ERROR,
        f"{upstream} failed unexpectedly; quote the trace id to support",
        {"upstream": upstream, "trace_id": current_trace_id()},
    )

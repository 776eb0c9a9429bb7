"""Server interceptor that turns exceptions into gRPC status with ErrorInfo.

A :class:`DomainError` becomes its own status. Anything else is a defect on our
side: it is logged with its traceback and the caller gets INTERNAL with the trace
id to quote, never the exception text (which may hold data it must not see).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

import asyncpg
import grpc
import sqlalchemy.exc
from grpc_status import rpc_status
from opentelemetry import trace

from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.telemetry import current_trace_id
from openloop_runtime.tracing import REASON_ATTRIBUTE
from openloop_runtime.wrapping import Behavior, MethodWrappingInterceptor, StreamBehavior

_log = logging.getLogger(__name__)


class ErrorMappingInterceptor(MethodWrappingInterceptor):
    def __init__(self, domain: str) -> None:
        super().__init__()
        self._domain = domain

    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except DomainError as error:
                await self._abort(context, error)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await self._abort_unexpected(context, error)

        return guarded

    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def guarded(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncGenerator[Any, None]:
            try:
                async with contextlib.aclosing(behavior(request, context)) as responses:
                    async for response in responses:
                        yield response
            except DomainError as error:
                await self._abort(context, error)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await self._abort_unexpected(context, error)

        return guarded

    async def _abort_unexpected(self, context: grpc.aio.ServicerContext, error: Exception) -> None:
        """A database out of reach is UNAVAILABLE (retryable); anything else is a defect."""
        if is_database_unavailable(error):
            _log.warning("database unavailable: %s", type(error).__name__)
            await self._abort(
                context,
                DomainError(
                    grpc.StatusCode.UNAVAILABLE,
                    ErrorReason.ERROR_REASON_DATABASE_UNAVAILABLE,
                    "the service's database did not answer; retry with the same idempotency "
                    "key or ids",
                ),
            )
            return
        _log.exception("unhandled error")
        await self._abort(
            context,
            DomainError(
                grpc.StatusCode.INTERNAL,
                ErrorReason.ERROR_REASON_INTERNAL_ERROR,
                "internal error; quote the trace id to support",
                {"trace_id": current_trace_id()},
            ),
        )

    async def _abort(self, context: grpc.aio.ServicerContext, error: DomainError) -> None:
        # The tracing interceptor around this one records the status code on the call's span;
        # the reason goes beside it, so a trace says why a call failed.
        trace.get_current_span().set_attribute(REASON_ATTRIBUTE, error.reason)
        status = rpc_status.to_status(error.to_status(self._domain))
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be reached, not that a query was wrong.

    Looks through SQLAlchemy's wrappers (``orig``) and exception chains (``__cause__``).
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, _UNAVAILABLE):
            return True
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) and orig is not seen else seen.__cause__
    return False


_UNAVAILABLE = (
    ConnectionError,
    TimeoutError,
    sqlalchemy.exc.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
)
"""Failures to reach the database (refused, reset, timed out, shut down), as opposed to a
query the database refused."""

"""A server interceptor that wraps each method's behaviour once, not once per call.

grpc.aio asks every interceptor for a method's handler on every call. The generated code
hands back the same handler object each time, so an interceptor built on this keeps the
handler it wrapped per method and returns it again while the handler under it is the same
object. A call then costs the wrapper alone, not a new closure and handler, and an
interceptor further out sees the same object too and can do the same. At most
``MAX_CACHED_METHODS`` are kept, so a catch-all handler cannot make callers grow it.

A streaming response comes either from an async generator or from a coroutine that writes
with ``context.write`` (gRPC's health ``Watch`` does); each is wrapped as what it is.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
"""A unary-response method: request (or request iterator) and context in, response out."""
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]
"""A streaming-response method."""
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]

MAX_CACHED_METHODS = 1024
"""Far more methods than a service has; beyond it, handlers are wrapped per call."""


class MethodWrappingInterceptor(grpc.aio.ServerInterceptor, ABC):  # type: ignore[misc]
    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # no such method: the server answers UNIMPLEMENTED
            return None
        method: str = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap_handler(method, handler)
        if known is not None or len(self._wrapped) < MAX_CACHED_METHODS:
            self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap_handler(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        # Client-streaming methods receive the request iterator where a request would be;
        # the wrappers pass it through unchanged.
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self.wrap_unary(method, handler.unary_unary), **codecs
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_streaming(method, handler.unary_stream), **codecs
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self.wrap_unary(method, handler.stream_unary), **codecs
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_streaming(method, handler.stream_stream), **codecs
            )
        return handler

    def _wrap_streaming(self, method: str, behavior: Any) -> Any:
        if inspect.isasyncgenfunction(behavior):
            return self.wrap_stream(method, behavior)
        return self.wrap_unary(method, behavior)  # writes with context.write, returns None

    @abstractmethod
    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        """``behavior`` of the method named ``method`` (``/package.Service/Method``), wrapped:
        a coroutine function (a unary answer, or a stream written with ``context.write``)."""

    @abstractmethod
    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        """A streaming answer's async generator function, wrapped as one."""

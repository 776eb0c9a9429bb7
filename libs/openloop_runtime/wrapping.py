"""A server interceptor that wraps each method's behaviour once, not once per call.

grpc.aio asks every interceptor for a method's handler on every call. The generated code
hands back the same handler object each time, so an interceptor built on this keeps the
handler it wrapped per method and returns it again while the handler under it is the same
object. A call then costs the wrapper alone, not a new closure and handler, and an
interceptor further out sees the same object too and can do the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
"""A unary-response method: request (or request iterator) and context in, response out."""
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
"""A streaming-response method."""
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


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
                self.wrap_stream(method, handler.unary_stream), **codecs
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self.wrap_unary(method, handler.stream_unary), **codecs
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self.wrap_stream(method, handler.stream_stream), **codecs
            )
        return handler

    @abstractmethod
    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        """``behavior`` of the method named ``method`` (``/package.Service/Method``), wrapped."""

    @abstractmethod
    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        """A streaming-response ``behavior``, wrapped."""

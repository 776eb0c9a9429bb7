"""An interceptor built on MethodWrappingInterceptor wraps a method's handler once and
hands the same wrapped handler back on every later call, so a chain of them does too."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from openloop_runtime.wrapping import Behavior, MethodWrappingInterceptor, StreamBehavior


class _Counting(MethodWrappingInterceptor):
    def __init__(self) -> None:
        super().__init__()
        self.wrapped: list[str] = []

    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        self.wrapped.append(method)

        async def wrapped(request: Any, context: Any) -> Any:
            return ("wrapped", await behavior(request, context))

        return wrapped

    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        self.wrapped.append(method)
        return behavior


class _Details(grpc.HandlerCallDetails):  # type: ignore[misc]
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def _echo(request: Any, context: Any) -> Any:
    return request


def _continuation(handlers: dict[str, grpc.RpcMethodHandler]) -> Any:
    async def continuation(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return handlers.get(details.method)

    return continuation


pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_method_is_wrapped_once_and_the_wrapped_handler_reused():
    handlers = {"/t.S/A": grpc.unary_unary_rpc_method_handler(_echo)}
    inner, outer = _Counting(), _Counting()

    async def through_inner(details: grpc.HandlerCallDetails) -> Any:
        return await inner.intercept_service(_continuation(handlers), details)

    first = await outer.intercept_service(through_inner, _Details("/t.S/A"))
    second = await outer.intercept_service(through_inner, _Details("/t.S/A"))
    assert first is second
    assert first is not None
    assert inner.wrapped == outer.wrapped == ["/t.S/A"]
    assert await first.unary_unary("x", None) == ("wrapped", ("wrapped", "x"))


async def test_a_new_handler_under_the_same_name_is_wrapped_afresh():
    handlers = {"/t.S/A": grpc.unary_unary_rpc_method_handler(_echo)}
    interceptor = _Counting()
    first = await interceptor.intercept_service(_continuation(handlers), _Details("/t.S/A"))
    handlers["/t.S/A"] = grpc.unary_unary_rpc_method_handler(_echo)
    second = await interceptor.intercept_service(_continuation(handlers), _Details("/t.S/A"))
    assert first is not second
    assert interceptor.wrapped == ["/t.S/A", "/t.S/A"]


async def test_an_unknown_method_is_left_to_the_server():
    interceptor = _Counting()
    assert await interceptor.intercept_service(_continuation({}), _Details("/t.S/B")) is None
    assert interceptor.wrapped == []


async def test_each_kind_of_method_keeps_its_kind_and_codecs():
    def decode(data: bytes) -> str:
        return data.decode()

    def encode(text: str) -> bytes:
        return text.encode()

    makers = {
        "unary_unary": grpc.unary_unary_rpc_method_handler,
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }
    handlers = {
        f"/t.S/{kind}": make(_echo, request_deserializer=decode, response_serializer=encode)
        for kind, make in makers.items()
    }
    interceptor = _Counting()
    for kind in makers:
        wrapped = await interceptor.intercept_service(
            _continuation(handlers), _Details(f"/t.S/{kind}")
        )
        assert wrapped is not None
        assert getattr(wrapped, kind) is not None
        assert [k for k in makers if getattr(wrapped, k) is not None] == [kind]
        assert wrapped.request_deserializer is decode
        assert wrapped.response_serializer is encode


async def test_beyond_the_cap_methods_are_wrapped_per_call_not_kept(monkeypatch):
    monkeypatch.setattr("openloop_runtime.wrapping.MAX_CACHED_METHODS", 2)
    handlers = {f"/t.S/M{i}": grpc.unary_unary_rpc_method_handler(_echo) for i in range(3)}
    interceptor = _Counting()
    for _ in range(2):
        for method in handlers:
            await interceptor.intercept_service(_continuation(handlers), _Details(method))
    assert interceptor.wrapped == ["/t.S/M0", "/t.S/M1", "/t.S/M2", "/t.S/M2"]

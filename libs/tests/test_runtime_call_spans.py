"""Every call gets one SERVER span, joined to the caller's trace, with its status code and,
when it fails, the ErrorInfo reason it was answered with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from openloop_runtime.errors import ErrorReason, not_found
from openloop_runtime.interceptors import ErrorMappingInterceptor

SERVICE = "test.v1.Probe"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


async def _ok(request: bytes, context: Any) -> bytes:
    return b"ok:" + request


async def _missing(request: bytes, context: Any) -> bytes:
    raise not_found(ErrorReason.ERROR_REASON_PAYMENT_NOT_FOUND, "payments/p1")


async def _defect(request: bytes, context: Any) -> bytes:
    raise RuntimeError("citizen 1345951597671 must not reach a trace")


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for part in (b"a", b"b", b"c"):
        yield part


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe() -> AsyncIterator[tuple[grpc.aio.Channel, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = grpc.aio.server(
        interceptors=[
            # As start_server arranges them: tracing outermost.
            aio_server_interceptor(tracer_provider=provider),  # type: ignore[no-untyped-call]
            ErrorMappingInterceptor("test.openloop.dev"),
        ]
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Ok": grpc.unary_unary_rpc_method_handler(_ok),
                    "Missing": grpc.unary_unary_rpc_method_handler(_missing),
                    "Defect": grpc.unary_unary_rpc_method_handler(_defect),
                    "Stream": grpc.unary_stream_rpc_method_handler(_stream),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, exporter
    finally:
        await server.stop(None)


def _only_span(exporter: InMemorySpanExporter, method: str) -> ReadableSpan:
    spans = [s for s in exporter.get_finished_spans() if s.name == f"/{SERVICE}/{method}"]
    assert len(spans) == 1, spans
    return spans[0]


pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_call_is_one_server_span_with_the_rpc_conventions(probe):
    channel, exporter = probe
    exporter.clear()
    assert await channel.unary_unary(f"/{SERVICE}/Ok")(b"x") == b"ok:x"
    span = _only_span(exporter, "Ok")
    assert span.kind is SpanKind.SERVER
    attributes = dict(span.attributes or {})
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == SERVICE
    assert attributes["rpc.method"] == "Ok"
    assert attributes["rpc.grpc.status_code"] == 0
    assert "openloop.error.reason" not in attributes
    assert span.status.status_code is StatusCode.UNSET


async def test_the_span_joins_the_callers_trace(probe):
    channel, exporter = probe
    exporter.clear()
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    await channel.unary_unary(f"/{SERVICE}/Ok")(b"", metadata=(("traceparent", traceparent),))
    span = _only_span(exporter, "Ok")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID


async def test_a_streamed_answer_is_one_span_ending_with_the_stream(probe):
    channel, exporter = probe
    exporter.clear()
    parts = [part async for part in channel.unary_stream(f"/{SERVICE}/Stream")(b"")]
    assert parts == [b"a", b"b", b"c"]
    span = _only_span(exporter, "Stream")
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == 0


@pytest.mark.parametrize(
    ("method", "code", "reason", "span_status"),
    [
        # A client's mistake is not a failure of the server: the span's status stays unset.
        ("Missing", grpc.StatusCode.NOT_FOUND, "PAYMENT_NOT_FOUND", StatusCode.UNSET),
        ("Defect", grpc.StatusCode.INTERNAL, "INTERNAL_ERROR", StatusCode.ERROR),
    ],
)
async def test_a_failed_call_s_span_carries_its_code_and_reason_but_no_exception_text(
    probe, method: str, code: grpc.StatusCode, reason: str, span_status: StatusCode
):
    channel, exporter = probe
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/{method}")(b"")
    assert caught.value.code() == code
    span = _only_span(exporter, method)
    attributes = dict(span.attributes or {})
    assert attributes["rpc.grpc.status_code"] == code.value[0]
    assert attributes["openloop.error.reason"] == reason
    assert span.status.status_code is span_status
    recorded = repr(attributes) + repr(span.events) + (span.status.description or "")
    assert "1345951597671" not in recorded

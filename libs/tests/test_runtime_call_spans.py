"""Every call gets one SERVER span, joined to the caller's trace, with its status code and,
when it fails, the ErrorInfo reason it was answered with."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from openloop_runtime.errors import ErrorReason, not_found
from openloop_runtime.interceptors import ErrorMappingInterceptor
from openloop_runtime.tracing import TracingInterceptor, client_interceptors

SERVICE = "test.v1.Probe"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


async def _ok(request: bytes, context: Any) -> bytes:
    return b"ok:" + request


async def _request_id(request: bytes, context: Any) -> bytes:
    return dict(context.invocation_metadata()).get("x-request-id", "").encode()


async def _missing(request: bytes, context: Any) -> bytes:
    raise not_found(ErrorReason.ERROR_REASON_PAYMENT_NOT_FOUND, "payments/p1")


async def _defect(request: bytes, context: Any) -> bytes:
    raise RuntimeError("citizen 1345951597671 must not reach a trace")


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for part in (b"a", b"b", b"c"):
        yield part


async def _broken_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"a"
    raise RuntimeError("citizen 1345951597671 must not reach a trace")


async def _endless(request: bytes, context: Any) -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 1000


async def _written(request: bytes, context: Any) -> None:
    await context.write(b"a")
    await context.write(b"b")


async def _headers(request: bytes, context: Any) -> bytes:
    return ",".join(sorted(key for key, _ in context.invocation_metadata())).encode()


async def _slow(request: bytes, context: Any) -> bytes:
    await asyncio.Event().wait()
    return b""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe() -> AsyncIterator[tuple[grpc.aio.Channel, InMemorySpanExporter]]:
    async with (
        _probe_server() as (port, exporter, _),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield channel, exporter


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced_client() -> AsyncIterator[tuple[grpc.aio.Channel, InMemorySpanExporter]]:
    """A channel with the client-side tracing, to the same kind of server, one provider."""
    async with (
        _probe_server() as (port, exporter, provider),
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", interceptors=client_interceptors(provider)
        ) as channel,
    ):
        yield channel, exporter


@contextlib.asynccontextmanager
async def _probe_server() -> AsyncIterator[tuple[int, InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = grpc.aio.server(
        interceptors=[
            # As start_server arranges them: tracing outermost.
            TracingInterceptor(tracer_provider=provider),
            ErrorMappingInterceptor("test.openloop.dev"),
        ]
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Ok": grpc.unary_unary_rpc_method_handler(_ok),
                    "RequestId": grpc.unary_unary_rpc_method_handler(_request_id),
                    "Missing": grpc.unary_unary_rpc_method_handler(_missing),
                    "Defect": grpc.unary_unary_rpc_method_handler(_defect),
                    "Stream": grpc.unary_stream_rpc_method_handler(_stream),
                    "BrokenStream": grpc.unary_stream_rpc_method_handler(_broken_stream),
                    "Slow": grpc.unary_unary_rpc_method_handler(_slow),
                    "Endless": grpc.unary_stream_rpc_method_handler(_endless),
                    "Written": grpc.unary_stream_rpc_method_handler(_written),
                    "Headers": grpc.unary_unary_rpc_method_handler(_headers),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, exporter, provider
    finally:
        await server.stop(None)


def _only_span(
    exporter: InMemorySpanExporter, method: str, kind: SpanKind = SpanKind.SERVER
) -> ReadableSpan:
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.name == f"/{SERVICE}/{method}" and s.kind is kind
    ]
    assert len(spans) == 1, spans
    return spans[0]


async def _span_ended(exporter: InMemorySpanExporter, method: str) -> None:
    """Wait up to two seconds for a span of ``method``: a server learns a moment after its
    client that a call was given up."""
    for _ in range(100):
        if any(s.name == f"/{SERVICE}/{method}" for s in exporter.get_finished_spans()):
            return
        await asyncio.sleep(0.02)


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
    assert attributes["network.peer.address"] == "127.0.0.1"
    assert isinstance(attributes["network.peer.port"], int)
    assert attributes["network.peer.port"] > 0
    assert "openloop.error.reason" not in attributes
    assert span.status.status_code is StatusCode.UNSET


async def test_each_call_is_its_own_span(probe):
    channel, exporter = probe
    exporter.clear()
    for _ in range(3):
        await channel.unary_unary(f"/{SERVICE}/Ok")(b"")
    spans = [s for s in exporter.get_finished_spans() if s.name == f"/{SERVICE}/Ok"]
    assert len(spans) == 3
    assert len({span.context.span_id for span in spans}) == 3
    assert len({span.context.trace_id for span in spans}) == 3  # no caller context: new traces


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


async def test_a_stream_that_breaks_midway_ends_its_span_as_a_server_fault(probe):
    channel, exporter = probe
    exporter.clear()
    received: list[bytes] = []

    async def read_all() -> None:
        async for part in channel.unary_stream(f"/{SERVICE}/BrokenStream")(b""):
            received.append(part)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_all()
    assert received == [b"a"]
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    span = _only_span(exporter, "BrokenStream")
    attributes = dict(span.attributes or {})
    assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert attributes["openloop.error.reason"] == "INTERNAL_ERROR"
    assert span.status.status_code is StatusCode.ERROR
    assert "1345951597671" not in repr(attributes) + (span.status.description or "")


@pytest.mark.parametrize(
    "deadline",
    [
        pytest.param(None, id="no-deadline"),
        # Given up on long before its deadline: the client's choice, not a server fault,
        # however close to it the tracing allows a cancel to count as the deadline.
        pytest.param(3.0, id="deadline-far-ahead"),
    ],
)
async def test_a_call_the_client_gives_up_on_ends_its_span_as_cancelled(
    probe, deadline: float | None
):
    channel, exporter = probe
    exporter.clear()
    call = channel.unary_unary(f"/{SERVICE}/Slow")(b"", timeout=deadline)
    await asyncio.sleep(0.2)
    call.cancel()
    await _span_ended(exporter, "Slow")
    span = _only_span(exporter, "Slow")
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert span.status.status_code is StatusCode.UNSET


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


async def test_a_call_made_is_a_client_span_whose_context_the_server_joins(traced_client):
    channel, exporter = traced_client
    exporter.clear()
    assert await channel.unary_unary(f"/{SERVICE}/Ok")(b"x") == b"ok:x"
    client = _only_span(exporter, "Ok", SpanKind.CLIENT)
    server = _only_span(exporter, "Ok", SpanKind.SERVER)
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    attributes = dict(client.attributes or {})
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == SERVICE
    assert attributes["rpc.method"] == "Ok"
    assert attributes["rpc.grpc.status_code"] == 0
    assert client.status.status_code is StatusCode.UNSET


async def test_a_call_made_inside_a_span_is_its_child_and_keeps_the_callers_metadata(
    traced_client,
):
    channel, exporter = traced_client
    exporter.clear()
    with TracerProvider().get_tracer("test").start_as_current_span("payment") as outer:
        echoed = await channel.unary_unary(f"/{SERVICE}/RequestId")(
            b"", metadata=(("x-request-id", "r1"),)
        )
    assert echoed == b"r1"
    client = _only_span(exporter, "RequestId", SpanKind.CLIENT)
    assert client.context.trace_id == outer.get_span_context().trace_id
    assert client.parent is not None
    assert client.parent.span_id == outer.get_span_context().span_id


async def test_a_failed_call_made_is_an_error_client_span_without_the_details(traced_client):
    channel, exporter = traced_client
    exporter.clear()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/Missing")(b"")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    client = _only_span(exporter, "Missing", SpanKind.CLIENT)
    assert dict(client.attributes or {})["rpc.grpc.status_code"] == 5
    assert client.status.status_code is StatusCode.ERROR
    assert client.status.description == "NOT_FOUND"


async def test_a_streamed_call_made_is_one_client_span_ending_with_the_stream(traced_client):
    channel, exporter = traced_client
    exporter.clear()
    parts = [part async for part in channel.unary_stream(f"/{SERVICE}/Stream")(b"")]
    assert parts == [b"a", b"b", b"c"]
    client = _only_span(exporter, "Stream", SpanKind.CLIENT)
    server = _only_span(exporter, "Stream", SpanKind.SERVER)
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert dict(client.attributes or {})["rpc.grpc.status_code"] == 0


async def test_a_call_made_and_given_up_on_is_a_cancelled_client_span(traced_client):
    channel, exporter = traced_client
    exporter.clear()
    call = channel.unary_unary(f"/{SERVICE}/Slow")(b"")
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    client = _only_span(exporter, "Slow", SpanKind.CLIENT)
    assert dict(client.attributes or {})["rpc.grpc.status_code"] == 1
    assert client.status.status_code is StatusCode.ERROR
    assert client.status.description == "CANCELLED"


async def test_a_stream_the_client_leaves_midway_ends_its_span_cleanly(probe, caplog):
    channel, exporter = probe
    exporter.clear()
    call = channel.unary_stream(f"/{SERVICE}/Endless")(b"")
    for _ in range(3):
        await call.read()
    call.cancel()
    await _span_ended(exporter, "Endless")
    gc.collect()  # a stream left unfinished is closed by the loop's finaliser, in another task
    await asyncio.sleep(0.1)
    span = _only_span(exporter, "Endless")
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_stream_written_through_its_context_is_served_and_traced(probe):
    channel, exporter = probe
    exporter.clear()
    parts = [part async for part in channel.unary_stream(f"/{SERVICE}/Written")(b"")]
    assert parts == [b"a", b"b"]
    assert dict(_only_span(exporter, "Written").attributes or {})["rpc.grpc.status_code"] == 0


async def test_a_call_past_its_deadline_is_a_server_fault_on_its_span(probe):
    channel, exporter = probe
    exporter.clear()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/Slow")(b"", timeout=0.2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await _span_ended(exporter, "Slow")
    span = _only_span(exporter, "Slow")
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == code.value[0]
    assert span.status.status_code is StatusCode.ERROR


async def test_a_callers_baggage_goes_no_further_than_its_trace_context(traced_client):
    channel, exporter = traced_client
    exporter.clear()
    with TracerProvider().get_tracer("test").start_as_current_span("payment"):
        token = otel_context.attach(baggage.set_baggage("bank.note", "pushed"))
        try:
            headers = await channel.unary_unary(f"/{SERVICE}/Headers")(b"")
        finally:
            otel_context.detach(token)
    assert b"traceparent" in headers.split(b",")
    assert b"baggage" not in headers.split(b",")

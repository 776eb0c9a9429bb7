"""A stream that carries one request per message: each request gets a CLIENT span and a
SERVER span in the caller's trace, linked to the stream's own span, with its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from openloop_runtime.errors import invalid_field
from openloop_runtime.interceptors import ErrorMappingInterceptor
from openloop_runtime.tracing import StreamedRequestSpans, TracingInterceptor

METHOD = "/test.v1.Probe/Requests"
REQUEST_SPAN = f"{METHOD} request"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"

pytestmark = pytest.mark.asyncio(loop_scope="session")


class _Probe:
    """Serves ``Requests``: each message is ``traceparent|answer``; ``bad`` is refused."""

    def __init__(self, provider: TracerProvider) -> None:
        self.spans = StreamedRequestSpans(METHOD, tracer_provider=provider)

    async def requests(self, messages: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for message in messages:
            traceparent, _, answer = message.decode().partition("|")
            with self.spans.serve({"traceparent": traceparent} if traceparent else {}):
                if answer == "bad":
                    raise invalid_field("answer", "refused")
                await asyncio.sleep(0)
            yield answer.encode()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe() -> AsyncIterator[tuple[Any, InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = grpc.aio.server(
        interceptors=[
            TracingInterceptor(tracer_provider=provider),
            ErrorMappingInterceptor("test.openloop.dev"),
        ]
    )
    service, _, name = METHOD.lstrip("/").partition("/")
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                service,
                {name: grpc.stream_stream_rpc_method_handler(_Probe(provider).requests)},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.stream_stream(METHOD), exporter, provider
    await server.stop(None)


def _spans(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == REQUEST_SPAN and s.kind is kind]


async def _stream_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    for _ in range(100):  # the server ends the stream's span a moment after the client
        spans = [s for s in exporter.get_finished_spans() if s.name == METHOD]
        if spans:
            return spans[0]
        await asyncio.sleep(0.02)
    raise AssertionError("the stream's span never ended")


async def test_each_request_joins_its_callers_trace_and_links_to_the_stream(probe) -> None:
    open_stream, exporter, _ = probe
    exporter.clear()
    other_trace = "1" * 32
    stream = open_stream()
    for message in (f"00-{TRACE_ID}-{PARENT_ID}-01|a", f"00-{other_trace}-{PARENT_ID}-01|b"):
        await stream.write(message.encode())
        assert await stream.read() == message[-1].encode()
    await stream.done_writing()
    assert await stream.code() == grpc.StatusCode.OK
    stream_span = await _stream_span(exporter)

    first, second = _spans(exporter, SpanKind.SERVER)
    assert [format(s.context.trace_id, "032x") for s in (first, second)] == [TRACE_ID, other_trace]
    for span in (first, second):
        assert span.parent is not None
        assert format(span.parent.span_id, "016x") == PARENT_ID
        assert [link.context.span_id for link in span.links] == [stream_span.context.span_id]
        attributes = dict(span.attributes or {})
        assert attributes["rpc.system"] == "grpc"
        assert attributes["rpc.service"] == "test.v1.Probe"
        assert attributes["rpc.method"] == "Requests"
        assert attributes["rpc.grpc.status_code"] == 0
        assert span.status.status_code is StatusCode.UNSET


async def test_a_request_without_a_context_starts_a_trace_of_its_own(probe) -> None:
    open_stream, exporter, _ = probe
    exporter.clear()
    stream = open_stream()
    for answer in (b"|a", b"|b"):
        await stream.write(answer)
        await stream.read()
    await stream.done_writing()
    await stream.code()
    stream_span = await _stream_span(exporter)
    spans = _spans(exporter, SpanKind.SERVER)
    assert len(spans) == 2
    assert all(span.parent is None for span in spans)
    trace_ids = {span.context.trace_id for span in spans}
    assert len(trace_ids) == 2
    assert stream_span.context.trace_id not in trace_ids


async def test_the_callers_request_span_is_the_servers_parent(probe) -> None:
    open_stream, exporter, provider = probe
    exporter.clear()
    client = StreamedRequestSpans(METHOD, tracer_provider=provider)
    stream = open_stream()
    with client.call() as trace_context:
        assert set(trace_context) == {"traceparent"}
        await stream.write(f"{trace_context['traceparent']}|a".encode())
        assert await stream.read() == b"a"
    await stream.done_writing()
    await stream.code()
    [caller] = _spans(exporter, SpanKind.CLIENT)
    [server] = _spans(exporter, SpanKind.SERVER)
    assert server.context.trace_id == caller.context.trace_id
    assert server.parent is not None
    assert server.parent.span_id == caller.context.span_id
    assert dict(caller.attributes or {})["rpc.grpc.status_code"] == 0
    assert caller.status.status_code is StatusCode.UNSET


async def test_a_refused_request_carries_its_code_and_reason_on_both_spans(probe) -> None:
    open_stream, exporter, provider = probe
    exporter.clear()
    client = StreamedRequestSpans(METHOD, tracer_provider=provider)
    stream = open_stream()

    async def refused() -> None:
        with client.call() as trace_context:
            await stream.write(f"{trace_context['traceparent']}|bad".encode())
            await stream.read()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await refused()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await _stream_span(exporter)
    [caller] = _spans(exporter, SpanKind.CLIENT)
    [server] = _spans(exporter, SpanKind.SERVER)
    code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert dict(server.attributes or {})["rpc.grpc.status_code"] == code
    assert dict(server.attributes or {})["openloop.error.reason"] == "INVALID_FIELD"
    assert server.status.status_code is StatusCode.UNSET  # the caller's mistake
    assert dict(caller.attributes or {})["rpc.grpc.status_code"] == code
    assert caller.status.status_code is StatusCode.ERROR


async def test_a_request_the_caller_gives_up_on_is_deadline_exceeded(probe) -> None:
    _, exporter, provider = probe
    exporter.clear()
    client = StreamedRequestSpans(METHOD, tracer_provider=provider)

    async def given_up() -> None:
        with client.call():
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        await given_up()
    [caller] = _spans(exporter, SpanKind.CLIENT)
    expected = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert dict(caller.attributes or {})["rpc.grpc.status_code"] == expected
    assert caller.status.status_code is StatusCode.ERROR

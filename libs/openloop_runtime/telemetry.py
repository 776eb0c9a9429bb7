"""OpenTelemetry tracing: one provider per process, W3C trace context everywhere.

Spans go to an OTLP collector when one is configured, and to a JSON-lines file
when ``trace_file`` is set, so a developer can read a whole payment's trace with
no collector running (``python -m openloop_dev trace <trace-id>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def _json_line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


def configure_tracing(
    service_name: str, *, otlp_endpoint: str = "", trace_file: Path | None = None
) -> tuple[TracerProvider, IO[str] | None]:
    """Install the global tracer provider and return it with the span file it writes."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if otlp_endpoint:
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=otlp_endpoint, insecure=otlp_in_clear(otlp_endpoint))
            )
        )
    span_file: IO[str] | None = None
    if trace_file is not None:
        trace_file.parent.mkdir(parents=True, exist_ok=True)
        # Block-buffered: the exporter writes a batch of spans and flushes once, so a batch
        # is one write, not one per span (each a system call on the service's process).
        span_file = trace_file.open("a", encoding="utf-8")
        provider.add_span_processor(
            BatchSpanProcessor(
                ConsoleSpanExporter(out=span_file, formatter=_json_line),
                schedule_delay_millis=200,
            )
        )
    trace.set_tracer_provider(provider)
    return provider, span_file


def otlp_in_clear(endpoint: str) -> bool:
    """Whether spans go to the collector without TLS: only when its address says so
    (``http://``). Spans name resources and peers, so ``https://`` or a bare
    ``host:port`` is TLS."""
    return urlsplit(endpoint).scheme == "http"


def current_trace_id() -> str:
    """The W3C trace id of the active span as 32 hex digits, or '' outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""

"""Spans leave a service in clear only to a collector whose address says so."""

from __future__ import annotations

import pytest

from openloop_runtime.telemetry import otlp_in_clear


@pytest.mark.parametrize(
    ("endpoint", "in_clear"),
    [
        ("http://otel-collector:4317", True),
        ("https://otel-collector.observability:4317", False),
        ("otel-collector:4317", False),
        ("HTTP://otel-collector:4317", True),
    ],
)
def test_spans_are_sent_over_tls_unless_the_address_is_http(endpoint: str, in_clear: bool) -> None:
    assert otlp_in_clear(endpoint) is in_clear

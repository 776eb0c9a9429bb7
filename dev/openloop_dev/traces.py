"""Read the JSON-lines span files the services write and print one trace as a tree."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SpanRecord:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: str
    end: str
    status: str
    attributes: dict[str, Any]


def _parse(line: str) -> SpanRecord:
    raw = json.loads(line)
    return SpanRecord(
        service=raw["resource"]["attributes"].get("service.name", "?"),
        name=raw["name"],
        trace_id=raw["context"]["trace_id"].removeprefix("0x"),
        span_id=raw["context"]["span_id"].removeprefix("0x"),
        parent_id=(raw.get("parent_id") or "").removeprefix("0x") or None,
        start=raw["start_time"],
        end=raw["end_time"],
        status=raw["status"]["status_code"],
        attributes=raw.get("attributes") or {},
    )


def read_spans(trace_dir: Path) -> Iterator[SpanRecord]:
    for path in sorted(trace_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield _parse(line)


def spans_of(trace_dir: Path, trace_id: str) -> list[SpanRecord]:
    return sorted(
        (s for s in read_spans(trace_dir) if s.trace_id == trace_id), key=lambda s: s.start
    )


def render_tree(spans: list[SpanRecord]) -> str:
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    ids = {s.span_id for s in spans}
    for span in spans:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            lines.append(f"{'  ' * depth}{span.service:<11} {span.name}  [{span.status}]")
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)

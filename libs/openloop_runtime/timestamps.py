"""``google.protobuf.Timestamp`` from the timezone-aware datetimes our databases return, and
the service clock (injectable wherever time decides something, so tests can set it)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2


def to_timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC: the default ``clock`` of every component."""
    return datetime.now(UTC)

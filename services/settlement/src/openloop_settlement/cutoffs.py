"""Scheduled settlement cut-offs: the local times of day at which the OPEN cycle closes, and
the instants they fall on.

A cut-off is a wall-clock time in one IANA zone ("23:00" in Asia/Bangkok). Its instant on a
given day comes from zoneinfo, so the days on which a zone moves its clocks come out right:

- a time the clocks skip (01:30 in Europe/London on the last Sunday of March, when 01:00
  becomes 02:00) falls on the instant the clocks would have shown it without the jump, 02:30
  local: PEP 495's ``fold=0`` reading, with the offset in force before the change. The
  day's cut-off is late by the jump, never skipped.
- a time the clocks show twice (01:30 on the last Sunday of October) is its first
  occurrence: one close that day, never two.

Two cut-offs that land on one instant (01:30 and 02:30 on that March day) are one cut-off,
with one request id. Instants are compared in UTC: Python compares two datetimes sharing a
``tzinfo`` by their wall times, which is wrong across a change of offset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_LOCAL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
REQUEST_ID_PREFIX = "cutoff:"
_NEIGHBOURS = range(-2, 3)
"""Local days around now whose cut-offs are looked at: enough for any offset change."""


def parse_times(values: Iterable[str]) -> tuple[time, ...]:
    """Local cut-off times from ``"HH:MM"`` strings (24-hour), sorted; a malformed or
    repeated one is a ValueError that names it."""
    times: list[time] = []
    for value in values:
        match = _LOCAL_TIME.fullmatch(value)
        if match is None:
            raise ValueError(f"cut-off {value!r} is not a local time of day as HH:MM (00:00-23:59)")
        parsed = time(int(match[1]), int(match[2]))
        if parsed in times:
            raise ValueError(f"cut-off {value!r} is listed twice")
        times.append(parsed)
    return tuple(sorted(times))


def parse_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; an unknown one is a ValueError that names it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"cut-off time zone {name!r} is not a known IANA zone") from error


def request_id_for(cutoff: datetime) -> str:
    """The close request id of the cut-off at ``cutoff``: the same on every replica, whatever
    its zone setting, and within the request id alphabet (``parse.REQUEST_ID``).
    ``cutoff:20261127T1600Z`` is 23:00 in Bangkok on 27 November 2026."""
    return f"{REQUEST_ID_PREFIX}{cutoff.astimezone(UTC):%Y%m%dT%H%MZ}"


@dataclass(frozen=True, slots=True)
class CutoffSchedule:
    times: tuple[time, ...]
    """Local times of day, sorted and distinct; none: nothing is ever closed on schedule."""
    zone: ZoneInfo

    @classmethod
    def of(cls, times: Iterable[str], zone: str) -> CutoffSchedule:
        return cls(parse_times(times), parse_zone(zone))

    def __bool__(self) -> bool:
        return bool(self.times)

    def latest_at_or_before(self, now: datetime) -> datetime | None:
        """The latest cut-off instant not after ``now`` (UTC); None with no cut-offs."""
        past = [instant for instant in self._around(now) if instant <= now]
        return max(past, default=None)

    def next_after(self, now: datetime) -> datetime | None:
        """The first cut-off instant after ``now`` (UTC); None with no cut-offs."""
        future = [instant for instant in self._around(now) if instant > now]
        return min(future, default=None)

    def local(self, instant: datetime) -> datetime:
        """``instant`` on the zone's clocks, for logs."""
        return instant.astimezone(self.zone)

    def _around(self, now: datetime) -> set[datetime]:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        today = now.astimezone(self.zone).date()
        return {
            instant
            for offset in _NEIGHBOURS
            for instant in self._on(today + timedelta(days=offset))
        }

    def _on(self, day: date) -> Iterable[datetime]:
        # fold=0 (the default): a skipped time reads with the offset before the change, a
        # repeated time is its first occurrence.
        return (datetime.combine(day, t, tzinfo=self.zone).astimezone(UTC) for t in self.times)

"""Cut-off instants (pure): local times of day on a zone's clocks, across days and clock
changes, the request ids they close under, and the settings that name them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from openloop_settlement.config import SettlementSettings
from openloop_settlement.cutoffs import CutoffSchedule, parse_times, request_id_for
from openloop_settlement.parse import REQUEST_ID

BANGKOK = ZoneInfo("Asia/Bangkok")
LONDON = ZoneInfo("Europe/London")


def _at(zone: ZoneInfo, local: str) -> datetime:
    """``"2026-11-27 23:00"`` on the zone's clocks, in UTC."""
    return datetime.fromisoformat(local).replace(tzinfo=zone).astimezone(UTC)


def test_a_daily_bangkok_cut_off_is_23_00_local_every_day() -> None:
    schedule = CutoffSchedule.of(["23:00"], "Asia/Bangkok")
    tonight = _at(BANGKOK, "2026-11-27 23:00")
    assert tonight == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    noon = _at(BANGKOK, "2026-11-27 12:00")
    assert schedule.next_after(noon) == tonight
    assert schedule.latest_at_or_before(noon) == tonight - timedelta(days=1)
    # The cut-off instant itself has come: it is the latest, and the next is tomorrow's.
    assert schedule.latest_at_or_before(tonight) == tonight
    assert schedule.next_after(tonight) == tonight + timedelta(days=1)
    # Just after midnight in Bangkok (still the 27th in UTC): tonight's cut-off is past.
    after_midnight = _at(BANGKOK, "2026-11-28 00:30")
    assert schedule.latest_at_or_before(after_midnight) == tonight
    assert schedule.next_after(after_midnight) == tonight + timedelta(days=1)


def test_several_windows_a_day_come_in_order_and_wrap_to_the_next_day() -> None:
    schedule = CutoffSchedule.of(["23:00", "07:30", "15:00"], "Asia/Bangkok")
    assert [f"{t:%H:%M}" for t in schedule.times] == ["07:30", "15:00", "23:00"]
    now = _at(BANGKOK, "2026-12-31 06:00")
    seen = []
    for _ in range(4):
        upcoming = schedule.next_after(now)
        assert upcoming is not None
        seen.append(schedule.local(upcoming).strftime("%m-%d %H:%M"))
        assert schedule.latest_at_or_before(upcoming) == upcoming
        now = upcoming
    assert seen == ["12-31 07:30", "12-31 15:00", "12-31 23:00", "01-01 07:30"]


def test_a_cut_off_the_clocks_skip_falls_when_they_would_have_shown_it() -> None:
    """Europe/London, 29 March 2026: at 01:00 GMT the clocks go to 02:00 BST, so 01:30 is
    never shown. The cut-off falls at 01:30 GMT (02:30 BST): late by the jump, not skipped.
    02:30 is shown that day, at the same instant: the two cut-offs are one close."""
    skipped = CutoffSchedule.of(["01:30"], "Europe/London")
    saturday_night = _at(LONDON, "2026-03-28 23:00")
    spring = skipped.next_after(saturday_night)
    assert spring == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert skipped.local(spring).strftime("%H:%M %Z") == "02:30 BST"
    assert skipped.next_after(spring) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)  # 01:30 BST

    shown = CutoffSchedule.of(["02:30"], "Europe/London")
    assert shown.next_after(saturday_night) == spring
    assert shown.latest_at_or_before(spring + timedelta(hours=1)) == spring

    both = CutoffSchedule.of(["01:30", "02:30"], "Europe/London")
    instants = []
    now = saturday_night
    for _ in range(3):
        upcoming = both.next_after(now)
        assert upcoming is not None
        instants.append(upcoming)
        now = upcoming
    assert instants == [
        spring,
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 1, 30, tzinfo=UTC),
    ]
    assert request_id_for(instants[0]) == "cutoff:20260329T0130Z"


def test_a_cut_off_the_clocks_show_twice_closes_once_at_the_first() -> None:
    """25 October 2026: at 02:00 BST the clocks go back to 01:00 GMT, so 01:30 comes twice.
    One cut-off, at the first (00:30 UTC); the next is the following night's."""
    schedule = CutoffSchedule.of(["01:30"], "Europe/London")
    first = schedule.next_after(_at(LONDON, "2026-10-24 23:00"))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert schedule.next_after(first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    second_showing = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert schedule.latest_at_or_before(second_showing) == first


def test_no_cut_offs_schedule_nothing() -> None:
    schedule = CutoffSchedule.of([], "Asia/Bangkok")
    assert not schedule
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert schedule.latest_at_or_before(now) is None
    assert schedule.next_after(now) is None


def test_a_time_without_its_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CutoffSchedule.of(["23:00"], "Asia/Bangkok").next_after(datetime(2026, 11, 27))


def test_the_request_id_names_the_instant_and_is_a_valid_request_id() -> None:
    tonight = _at(BANGKOK, "2026-11-27 23:00")
    request_id = request_id_for(tonight)
    assert request_id == "cutoff:20261127T1600Z"
    assert REQUEST_ID.fullmatch(request_id)
    # The same instant from a replica that reads it in another zone: the same id.
    assert request_id_for(tonight.astimezone(LONDON)) == request_id
    assert request_id_for(tonight + timedelta(minutes=1)) != request_id


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["24:00"], "'24:00' is not a local time of day"),
        (["7:30"], "'7:30' is not a local time of day"),
        (["23:00:00"], "'23:00:00' is not a local time of day"),
        (["23:60"], "'23:60' is not a local time of day"),
        ([""], "'' is not a local time of day"),
        (["23:00", "07:30", "23:00"], "'23:00' is listed twice"),
    ],
)
def test_malformed_or_repeated_times_are_refused(values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_times(values)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("OPENLOOP_SETTLEMENT_CUTOFF_TIMES", "OPENLOOP_SETTLEMENT_CUTOFF_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_by_default_nothing_is_scheduled_on_bangkok_clocks(env: pytest.MonkeyPatch) -> None:
    settings = SettlementSettings()
    assert settings.cutoff_times == ()
    assert settings.cutoff_timezone == "Asia/Bangkok"
    assert not settings.cutoff_schedule()


def test_settings_read_a_json_list_of_times_and_a_zone(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPENLOOP_SETTLEMENT_CUTOFF_TIMES", '["23:00", "07:30"]')
    env.setenv("OPENLOOP_SETTLEMENT_CUTOFF_TIMEZONE", "Europe/London")
    settings = SettlementSettings()
    assert settings.cutoff_times == ("07:30", "23:00")
    schedule = settings.cutoff_schedule()
    assert schedule.zone == LONDON
    assert [f"{t:%H:%M}" for t in schedule.times] == ["07:30", "23:00"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CUTOFF_TIMES", '["25:00"]', "'25:00' is not a local time of day"),
        ("CUTOFF_TIMES", '["23:00", "23:00"]', "'23:00' is listed twice"),
        ("CUTOFF_TIMEZONE", "Asia/Bangkokk", "'Asia/Bangkokk' is not a known IANA zone"),
        ("CUTOFF_TIMEZONE", "../../etc/passwd", "is not a known IANA zone"),
    ],
)
def test_settings_with_a_bad_cut_off_are_refused(
    env: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    env.setenv(f"OPENLOOP_SETTLEMENT_{variable}", value)
    with pytest.raises(ValidationError, match=message):
        SettlementSettings()


def test_the_service_refuses_to_start_on_a_bad_cut_off() -> None:
    """Before it opens a port or its database: the process exits and says why."""
    environment = {
        **os.environ,
        "OPENLOOP_SETTLEMENT_CUTOFF_TIMES": '["23:00", "11pm"]',
        "OPENLOOP_SETTLEMENT_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    }
    started = subprocess.run(
        [sys.executable, "-m", "openloop_settlement"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "cutoff_times" in started.stderr
    assert "'11pm' is not a local time of day as HH:MM" in started.stderr

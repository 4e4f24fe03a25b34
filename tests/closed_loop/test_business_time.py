"""SLA deadlines in business hours of the team's time zone; quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cxloop_closed_loop.business_time import (
    add_business_time,
    business_time_between,
    quiet_until,
)
from cxloop_closed_loop.config import BusinessHours, QuietHours

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = BusinessHours(start=time(9), end=time(17), holidays=[date(2026, 12, 25)])


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_within_the_same_day() -> None:
    due = add_business_time(berlin(2026, 11, 23, 10, 0), timedelta(hours=4), HOURS, BERLIN)
    assert due == berlin(2026, 11, 23, 14, 0)


def test_after_hours_starts_next_morning() -> None:
    due = add_business_time(berlin(2026, 11, 23, 20, 0), timedelta(hours=1), HOURS, BERLIN)
    assert due == berlin(2026, 11, 24, 10, 0)


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    due = add_business_time(berlin(2026, 11, 27, 16, 0), timedelta(hours=4), HOURS, BERLIN)
    assert due == berlin(2026, 11, 30, 12, 0)


def test_holidays_are_skipped() -> None:
    due = add_business_time(berlin(2026, 12, 24, 16, 0), timedelta(hours=2), HOURS, BERLIN)
    assert due == berlin(2026, 12, 28, 10, 0)  # 25th holiday, 26th-27th weekend


def test_daylight_saving_change_keeps_wall_clock_hours() -> None:
    # Friday 16:00 CET + 2h business time = Monday 10:00 CEST (clocks moved on Sunday).
    due = add_business_time(berlin(2026, 3, 27, 16, 0), timedelta(hours=2), HOURS, BERLIN)
    assert due == berlin(2026, 3, 30, 10, 0)
    assert due.astimezone(UTC).hour == 8


def test_team_zone_matters() -> None:
    start = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    ny = ZoneInfo("America/New_York")
    assert add_business_time(start, timedelta(hours=1), HOURS, ny) == datetime(
        2026, 11, 23, 17, 0, tzinfo=UTC
    )
    assert add_business_time(start, timedelta(hours=1), HOURS, BERLIN) == berlin(
        2026, 11, 24, 10, 0
    )


def test_business_time_between_is_the_inverse() -> None:
    start = berlin(2026, 11, 27, 15, 30)
    due = add_business_time(start, timedelta(hours=7), HOURS, BERLIN)
    assert business_time_between(start, due, HOURS, BERLIN) == timedelta(hours=7)


def test_quiet_hours_across_midnight() -> None:
    quiet = QuietHours(start=time(20), end=time(7), timezone="Europe/Berlin")
    assert quiet_until(berlin(2026, 11, 23, 22, 0), quiet) == berlin(2026, 11, 24, 7, 0)
    assert quiet_until(berlin(2026, 11, 24, 3, 0), quiet) == berlin(2026, 11, 24, 7, 0)
    assert quiet_until(berlin(2026, 11, 24, 12, 0), quiet) is None
    assert quiet_until(berlin(2026, 11, 24, 12, 0), None) is None


def test_quiet_hours_within_a_day() -> None:
    quiet = QuietHours(start=time(12), end=time(13), timezone="Europe/Berlin")
    assert quiet_until(berlin(2026, 11, 24, 12, 30), quiet) == berlin(2026, 11, 24, 13, 0)
    assert quiet_until(berlin(2026, 11, 24, 13, 0), quiet) is None

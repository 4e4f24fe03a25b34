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


EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
AROUND_THE_CLOCK = BusinessHours.model_validate(
    {"days": EVERY_DAY, "start": "00:00", "end": "24:00"}
)
NIGHTS = BusinessHours.model_validate(
    {"start": "22:00", "end": "06:00", "holidays": ["2026-12-24"]}
)  # Monday to Friday nights: each window belongs to the day it starts on


def test_end_of_day_and_overnight_windows_are_accepted() -> None:
    assert AROUND_THE_CLOCK.end == time(0)
    assert AROUND_THE_CLOCK.overnight
    assert NIGHTS.overnight
    assert not HOURS.overnight


def test_around_the_clock_deadline_is_exactly_the_duration_later() -> None:
    start = berlin(2026, 11, 24, 23, 40)
    assert add_business_time(start, timedelta(hours=1), AROUND_THE_CLOCK, BERLIN) == start + (
        timedelta(hours=1)
    )
    assert add_business_time(start, timedelta(hours=50), AROUND_THE_CLOCK, BERLIN) == start + (
        timedelta(hours=50)
    )


def test_around_the_clock_across_daylight_saving_changes_counts_real_time() -> None:
    # 29 March 2026 has 23 hours in Berlin: 01:30 CET + 1h is 03:30 CEST.
    spring = berlin(2026, 3, 29, 1, 30)
    due = add_business_time(spring, timedelta(hours=1), AROUND_THE_CLOCK, BERLIN)
    assert due == berlin(2026, 3, 29, 3, 30)
    assert due - spring == timedelta(hours=1)
    # 25 October 2026 has 25 hours: a day of business time ends at 23:00 local.
    autumn = berlin(2026, 10, 25, 0, 0)
    due = add_business_time(autumn, timedelta(hours=24), AROUND_THE_CLOCK, BERLIN)
    assert due == berlin(2026, 10, 25, 23, 0)
    assert business_time_between(autumn, berlin(2026, 10, 26), AROUND_THE_CLOCK, BERLIN) == (
        timedelta(hours=25)
    )


def test_end_of_day_loses_no_minute() -> None:
    late = BusinessHours.model_validate({"start": "09:00", "end": "24:00"})
    tuesday = berlin(2026, 11, 24)
    assert business_time_between(tuesday, berlin(2026, 11, 25), late, BERLIN) == timedelta(hours=15)
    assert add_business_time(berlin(2026, 11, 24, 23, 30), timedelta(hours=1), late, BERLIN) == (
        berlin(2026, 11, 25, 9, 30)
    )


def test_overnight_window_runs_into_the_next_morning() -> None:
    # Tuesday 05:30 lies in Monday's window: 30 min until 06:00, the rest from 22:00.
    due = add_business_time(berlin(2026, 11, 24, 5, 30), timedelta(hours=1), NIGHTS, BERLIN)
    assert due == berlin(2026, 11, 24, 22, 30)
    # Feedback at Tuesday 23:00 + 2h: the same night, past midnight.
    due = add_business_time(berlin(2026, 11, 24, 23, 0), timedelta(hours=2), NIGHTS, BERLIN)
    assert due == berlin(2026, 11, 25, 1, 0)


def test_overnight_window_belongs_to_the_day_it_starts_on() -> None:
    # Saturday 05:00 is in Friday's window; Saturday's and Sunday's nights are off.
    due = add_business_time(berlin(2026, 11, 28, 5, 0), timedelta(hours=2), NIGHTS, BERLIN)
    assert due == berlin(2026, 11, 30, 23, 0)
    # Monday 03:00 is in Sunday's window, which does not exist: the clock starts at 22:00.
    due = add_business_time(berlin(2026, 11, 30, 3, 0), timedelta(hours=1), NIGHTS, BERLIN)
    assert due == berlin(2026, 11, 30, 23, 0)


def test_overnight_window_across_daylight_saving_changes() -> None:
    nights = BusinessHours.model_validate({"days": EVERY_DAY, "start": "22:00", "end": "06:00"})
    # Saturday 22:00 CET to Sunday 06:00 CEST is 7 hours; the eighth is Sunday 22:00-23:00.
    due = add_business_time(berlin(2026, 3, 28, 22, 0), timedelta(hours=8), nights, BERLIN)
    assert due == berlin(2026, 3, 29, 23, 0)
    # Saturday 22:00 CEST to Sunday 06:00 CET is 9 hours: 8 end at 05:00.
    due = add_business_time(berlin(2026, 10, 24, 22, 0), timedelta(hours=8), nights, BERLIN)
    assert due == berlin(2026, 10, 25, 5, 0)


def test_a_holiday_cancels_the_overnight_window_that_starts_on_it() -> None:
    # Thursday 24 December is a holiday: Wednesday night still counts until Thursday 06:00,
    # Thursday night does not, Friday night does.
    due = add_business_time(berlin(2026, 12, 24, 5, 0), timedelta(hours=2), NIGHTS, BERLIN)
    assert due == berlin(2026, 12, 25, 23, 0)


def test_business_time_between_is_the_inverse_overnight() -> None:
    start = berlin(2026, 11, 26, 23, 15)
    due = add_business_time(start, timedelta(hours=15), NIGHTS, BERLIN)
    assert due == berlin(2026, 11, 30, 22, 15)  # Thu night 6h45, Fri night 8h, Mon 15 min
    assert business_time_between(start, due, NIGHTS, BERLIN) == timedelta(hours=15)

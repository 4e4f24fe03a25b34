"""Time buckets in Europe/Berlin across the daylight-saving changes, and range decomposition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxloop_metrics.buckets import (
    Grain,
    Horizons,
    ceil_day,
    ceil_minute,
    cover,
    event_buckets,
    floor_day,
    floor_hour,
    floor_interval,
    floor_minute,
    interval_starts,
    next_interval,
    with_weeks,
)

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_spring_forward_day_has_23_hours() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    before = event_buckets(utc(2026, 3, 29, 0, 59, 30), BERLIN)  # 01:59:30 CET
    after = event_buckets(utc(2026, 3, 29, 1, 0, 0), BERLIN)  # 03:00 CEST
    assert before.day == after.day == utc(2026, 3, 28, 23)  # local midnight, UTC+1
    assert before.hour == utc(2026, 3, 29, 0)
    assert after.hour == utc(2026, 3, 29, 1)
    assert before.minute == utc(2026, 3, 29, 0, 59)
    next_day = next_interval(before.day, "day", BERLIN)
    assert next_day == utc(2026, 3, 29, 22)  # local midnight, UTC+2
    hours = list(interval_starts(before.day, next_day, "hour", BERLIN))
    assert len(hours) == 23


def test_fall_back_day_has_25_hours_and_two_distinct_0230s() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 local happens twice.
    first = event_buckets(utc(2026, 10, 25, 0, 30), BERLIN)  # 02:30 CEST
    second = event_buckets(utc(2026, 10, 25, 1, 30), BERLIN)  # 02:30 CET
    assert first.hour == utc(2026, 10, 25, 0)
    assert second.hour == utc(2026, 10, 25, 1)
    assert first.day == second.day == utc(2026, 10, 24, 22)
    end = next_interval(first.day, "day", BERLIN)
    assert end == utc(2026, 10, 25, 23)
    assert len(list(interval_starts(first.day, end, "hour", BERLIN))) == 25


def test_day_boundaries_follow_local_midnight() -> None:
    # 23:30 UTC on 24 March is 00:30 CET on the 25th: it counts on the 25th.
    assert floor_day(utc(2026, 3, 24, 23, 30), BERLIN) == utc(2026, 3, 24, 23)
    assert ceil_day(utc(2026, 3, 24, 23, 0), BERLIN) == utc(2026, 3, 24, 23)
    assert ceil_day(utc(2026, 3, 24, 23, 1), BERLIN) == utc(2026, 3, 25, 23)


def test_weeks_start_on_monday_and_months_on_the_first_in_local_time() -> None:
    weeks = list(interval_starts(utc(2026, 10, 21), utc(2026, 11, 3), "week", BERLIN))
    assert weeks == [utc(2026, 10, 18, 22), utc(2026, 10, 25, 23), utc(2026, 11, 1, 23)]
    months = list(interval_starts(utc(2026, 2, 15), utc(2026, 4, 2), "month", BERLIN))
    assert months == [utc(2026, 1, 31, 23), utc(2026, 2, 28, 23), utc(2026, 3, 31, 22)]
    # December rolls into the next year.
    assert next_interval(utc(2026, 11, 30, 23), "month", BERLIN) == utc(2026, 12, 31, 23)


def test_minute_rounding_keeps_exact_minutes_in_any_offset() -> None:
    exact = datetime(2026, 11, 25, 8, 32, tzinfo=BERLIN)
    assert ceil_minute(exact) == utc(2026, 11, 25, 7, 32)
    assert ceil_minute(exact + timedelta(microseconds=1)) == utc(2026, 11, 25, 7, 33)
    assert floor_minute(exact + timedelta(seconds=59)) == utc(2026, 11, 25, 7, 32)


def test_naive_datetimes_are_refused_not_read_in_the_host_zone() -> None:
    # A naive time was read in the host's zone by `astimezone`, and never equalled its own
    # floor, so `ceil_minute(07:32)` gave 07:33 (in the host's zone). Callers attach a zone.
    naive = datetime(2026, 11, 25, 7, 32)
    for bucket in (
        ceil_minute,
        floor_minute,
        lambda t: floor_hour(t, BERLIN),
        lambda t: floor_day(t, BERLIN),
        lambda t: floor_interval(t, "month", BERLIN),
    ):
        with pytest.raises(ValueError, match="naive datetime"):
            bucket(naive)


def test_half_hour_zones_get_local_hours() -> None:
    # Asia/Kolkata is UTC+5:30: local hours start at :30 UTC.
    assert floor_hour(utc(2026, 5, 1, 10, 10), KOLKATA) == utc(2026, 5, 1, 9, 30)
    assert floor_day(utc(2026, 5, 1, 10, 10), KOLKATA) == utc(2026, 4, 30, 18, 30)


def test_ninety_days_back_uses_days_and_edges() -> None:
    now = utc(2026, 11, 23, 22, 41, 10)
    horizons = Horizons(minute=now - timedelta(days=7), hour=now - timedelta(days=35))
    end = utc(2026, 11, 23, 22, 42)
    coverage = cover(end - timedelta(days=90), end, BERLIN, horizons)
    # 90 days back is 25 Aug 22:42 UTC = 26 Aug 00:42 CEST. Hour buckets are gone that far
    # back, so the start moves back to local midnight, 26 Aug 00:00 CEST = 25 Aug 22:00 UTC.
    # The end, 23:42 CET, lies in the local day that began at 22 Nov 23:00 UTC.
    assert coverage.start == utc(2026, 8, 25, 22)
    assert coverage.end == end
    assert coverage.ranges == (
        ("day", utc(2026, 8, 25, 22), utc(2026, 11, 22, 23)),
        ("hour", utc(2026, 11, 22, 23), utc(2026, 11, 23, 22)),
        ("minute", utc(2026, 11, 23, 22), end),
    )


def test_recent_window_is_exact_to_the_minute() -> None:
    now = utc(2026, 11, 23, 22, 41, 10)
    horizons = Horizons(minute=now - timedelta(days=7), hour=now - timedelta(days=35))
    end = utc(2026, 11, 23, 22, 42)
    coverage = cover(end - timedelta(hours=24), end, BERLIN, horizons)
    assert coverage.start == end - timedelta(hours=24)
    assert coverage.ranges[0] == ("minute", utc(2026, 11, 22, 22, 42), utc(2026, 11, 22, 23))


INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    start=INSTANTS,
    length=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=200)),
    age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
    zone=st.sampled_from([BERLIN, KOLKATA, ZoneInfo("America/New_York"), ZoneInfo("UTC")]),
)
def test_cover_is_a_contiguous_aligned_partition(
    start: datetime, length: timedelta, age: timedelta, zone: ZoneInfo
) -> None:
    end = start + length
    now = end + age
    horizons = Horizons(minute=now - timedelta(days=7), hour=now - timedelta(days=35))
    coverage = cover(start, end, zone, horizons)
    assert coverage.start <= start
    assert coverage.end >= end - timedelta(minutes=1)
    cursor = coverage.start
    for grain, s, e in coverage.ranges:
        assert s == cursor
        assert s < e
        if grain == "day":
            assert floor_day(s, zone) == s
            assert floor_day(e, zone) == e
        elif grain == "hour":
            assert floor_hour(s, zone) == s
            assert floor_hour(e, zone) == e
            assert s >= horizons.hour
        else:
            assert s.second == 0
            assert s >= horizons.minute
        cursor = e
    assert cursor == coverage.end


def test_whole_local_weeks_come_from_week_buckets_across_dst() -> None:
    # 2026-10-21 (Wed) .. 2026-11-05 (Thu) local: the week of Mon 26 Oct (after the October
    # change) is whole; the days before and after stay day buckets.
    start = utc(2026, 10, 20, 22)  # Wed 21 Oct 00:00 CEST
    end = utc(2026, 11, 4, 23)  # Thu 5 Nov 00:00 CET
    ranges = with_weeks((("day", start, end),), BERLIN)
    assert ranges == (
        ("day", start, utc(2026, 10, 25, 23)),  # Mon 26 Oct 00:00 CET
        ("week", utc(2026, 10, 25, 23), utc(2026, 11, 1, 23)),  # Mon 2 Nov 00:00 CET
        ("day", utc(2026, 11, 1, 23), end),
    )
    assert event_buckets(utc(2026, 10, 25, 0, 30), BERLIN).week == utc(2026, 10, 18, 22)
    short: tuple[tuple[Grain, datetime, datetime], ...] = (("day", start, utc(2026, 10, 23, 22)),)
    assert with_weeks(short, BERLIN) == short

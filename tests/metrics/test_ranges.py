"""Reading a request's `from`/`to`, and the aligned periods of a comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxloop_metrics.buckets import Coverage, Horizons, floor_day, floor_hour
from cxloop_metrics.ranges import (
    ReportError,
    adjoining_periods,
    explicit_range,
    local_instant,
    requested_range,
)
from cxschema.events import EARLIEST, LATEST
from tests.metrics.test_buckets import BERLIN, KOLKATA, utc

NEW_YORK = ZoneInfo("America/New_York")


def timezone_hours(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


def horizons(now: datetime) -> Horizons:
    """The defaults: minute buckets within 7 days, hour buckets within 35."""
    return Horizons(minute=now - timedelta(days=7), hour=now - timedelta(days=35))


def test_times_without_offset_are_wall_clock_times_of_the_reporting_zone() -> None:
    # A date is its local midnight: 24 Nov 00:00 CET = 23 Nov 23:00 UTC; in July CEST (+2).
    assert requested_range(datetime(2026, 11, 24), datetime(2026, 11, 26), BERLIN) == (
        utc(2026, 11, 23, 23),
        utc(2026, 11, 25, 23),
    )
    assert requested_range(datetime(2026, 7, 1, 8, 30), None, BERLIN) == (
        utc(2026, 7, 1, 6, 30),
        None,
    )
    # An offset is kept as given, whatever the zone.
    aware = datetime(2026, 11, 24, 9, tzinfo=KOLKATA)
    assert requested_range(aware, None, BERLIN)[0] == utc(2026, 11, 24, 3, 30)
    # 02:30 on 29 March does not exist in Berlin: read with the offset before the change.
    assert local_instant(datetime(2026, 3, 29, 2, 30), BERLIN).tzinfo is BERLIN
    assert requested_range(datetime(2026, 3, 29, 2, 30), None, BERLIN)[0] == utc(2026, 3, 29, 1, 30)


def test_a_range_is_cut_to_the_years_events_can_have() -> None:
    ancient = datetime(1, 1, 1, tzinfo=timezone_hours(14))
    far = datetime(9999, 12, 31, 23, 59, tzinfo=timezone_hours(-12))
    assert requested_range(ancient, far, BERLIN) == (EARLIEST, LATEST)
    assert requested_range(datetime(1, 1, 1), datetime(9999, 12, 31), BERLIN) == (
        EARLIEST,
        LATEST,
    )
    assert requested_range(datetime(1969, 7, 20), datetime(2026, 1, 1), NEW_YORK) == (
        EARLIEST,
        utc(2026, 1, 1, 5),
    )


@pytest.mark.parametrize(
    ("start", "end", "field", "message"),
    [
        (datetime(2026, 11, 24), datetime(2026, 11, 24), "to", "must be after `from`"),
        (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 24), "to", "must be after"),
        (datetime(2100, 1, 1, 1), None, "from", "before 2100-01-01"),
        (datetime(9999, 12, 31, tzinfo=timezone_hours(-12)), None, "from", "before 2100"),
        (None, datetime(1, 1, 1, tzinfo=timezone_hours(14)), "to", "after 1970-01-01"),
        (datetime(2200, 1, 1), datetime(2300, 1, 1), "from", "no event occurs later"),
    ],
)
def test_impossible_ranges_name_the_parameter(
    start: datetime | None, end: datetime | None, field: str, message: str
) -> None:
    with pytest.raises(ReportError, match=message) as caught:
        requested_range(start, end, BERLIN)
    assert caught.value.field == field


def test_an_explicit_range_needs_both_ends() -> None:
    with pytest.raises(ReportError) as caught:
        explicit_range(None, datetime(2026, 11, 24), BERLIN)
    assert caught.value.field == "from"
    with pytest.raises(ReportError) as caught:
        explicit_range(datetime(2026, 11, 24), None, BERLIN)
    assert caught.value.field == "to"


def bounds(c: Coverage) -> tuple[datetime, datetime]:
    return c.start, c.end


def test_rolling_windows_adjoin_with_equal_lengths() -> None:
    # The audit's case: at 07:38:20 UTC the 7-day window was 18 Nov 07:39 - 25 Nov 07:39, but
    # the previous one had to end on the hour (its minute buckets are gone) and ran to 08:00,
    # counting 18 Nov 07:50 twice. Both now end on the hour after now.
    now = utc(2026, 11, 25, 7, 38, 20)
    stop = utc(2026, 11, 25, 7, 39)
    previous, current = adjoining_periods(
        stop - timedelta(days=7), stop, tz=BERLIN, horizons=horizons(now), keep_length=True
    )
    assert bounds(previous) == (utc(2026, 11, 11, 8), utc(2026, 11, 18, 8))
    assert bounds(current) == (utc(2026, 11, 18, 8), utc(2026, 11, 25, 8))
    # 24 hours: everything within the minute buckets, exact to the minute.
    previous, current = adjoining_periods(
        stop - timedelta(hours=24), stop, tz=BERLIN, horizons=horizons(now), keep_length=True
    )
    assert bounds(previous) == (utc(2026, 11, 23, 7, 39), utc(2026, 11, 24, 7, 39))
    assert bounds(current) == (utc(2026, 11, 24, 7, 39), stop)
    # 90 days: the previous period lies beyond the hour buckets, so both are whole local days,
    # 90 each, up to the coming midnight; the current one holds the October change (+1 hour).
    previous, current = adjoining_periods(
        stop - timedelta(days=90), stop, tz=BERLIN, horizons=horizons(now), keep_length=True
    )
    assert bounds(previous) == (utc(2026, 5, 29, 22), utc(2026, 8, 27, 22))
    assert bounds(current) == (utc(2026, 8, 27, 22), utc(2026, 11, 25, 23))
    assert current.end - current.start == timedelta(days=90, hours=1)


def test_an_asked_range_is_compared_with_the_period_before_it() -> None:
    now = utc(2026, 11, 25, 7, 38, 20)
    # Local days 1-7 November against 25-31 October, which holds the October change: as many
    # local days, one hour longer.
    previous, current = adjoining_periods(
        utc(2026, 10, 31, 23),
        utc(2026, 11, 7, 23),
        tz=BERLIN,
        horizons=horizons(now),
        keep_length=False,
    )
    assert bounds(current) == (utc(2026, 10, 31, 23), utc(2026, 11, 7, 23))
    assert bounds(previous) == (utc(2026, 10, 24, 22), utc(2026, 10, 31, 23))
    # Not whole days: the same number of hours before.
    previous, current = adjoining_periods(
        utc(2026, 10, 31, 23),
        utc(2026, 11, 7, 22),
        tz=BERLIN,
        horizons=horizons(now),
        keep_length=False,
    )
    assert bounds(previous) == (utc(2026, 10, 25, 0), utc(2026, 10, 31, 23))  # 167 hours
    # A recent range is exact to the minute; seconds widen it to the minutes around it.
    previous, current = adjoining_periods(
        utc(2026, 11, 24, 8, 0, 30),
        utc(2026, 11, 24, 9, 15, 10),
        tz=BERLIN,
        horizons=horizons(now),
        keep_length=False,
    )
    assert bounds(current) == (utc(2026, 11, 24, 8), utc(2026, 11, 24, 9, 16))
    assert bounds(previous) == (utc(2026, 11, 24, 6, 44), utc(2026, 11, 24, 8))


INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    start=INSTANTS,
    length=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=120)),
    age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
    zone=st.sampled_from([BERLIN, KOLKATA, NEW_YORK, ZoneInfo("UTC")]),
    keep_length=st.booleans(),
)
def test_compared_periods_always_adjoin_are_equally_long_and_exact(
    start: datetime, length: timedelta, age: timedelta, zone: ZoneInfo, keep_length: bool
) -> None:
    end = start + length
    now = end + age
    previous, current = adjoining_periods(
        start, end, tz=zone, horizons=horizons(now), keep_length=keep_length
    )
    assert previous.end == current.start
    assert current.end >= end
    if keep_length:
        assert current.end - end <= timedelta(days=1, hours=1)
    else:
        assert current.start <= start
    if current.end - current.start != previous.end - previous.start:
        # Only whole local days may differ, by a daylight-saving hour.
        days = [b.astimezone(zone).date() for b in (previous.start, current.start, current.end)]
        assert all(floor_day(b, zone) == b for b in (previous.start, current.start, current.end))
        assert days[1] - days[0] == days[2] - days[1]
    for coverage in (previous, current):
        cursor = coverage.start
        for grain, s, e in coverage.ranges:
            assert s == cursor
            if grain == "day":
                assert floor_day(s, zone) == s
            elif grain == "hour":
                assert floor_hour(s, zone) == s
                assert s >= now - timedelta(days=35)
            else:
                assert s >= now - timedelta(days=7)
            cursor = e
        assert cursor == coverage.end

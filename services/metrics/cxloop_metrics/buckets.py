"""Time buckets: where an event is counted, and which stored buckets answer a time range.

Three grains are stored: UTC minutes, local hours and local days of the reporting time zone
(each identified by its first instant in UTC). A local hour or day is found by subtracting the
local clock's minutes, or by taking the local date's first instant, so daylight-saving changes
give 23- and 25-hour days and never a double-counted or missing hour.

A range [start, end) is answered by the coarsest buckets that fit inside it: whole local days,
then whole hours at the edges, then minutes. Minute buckets are kept only for the lateness
horizon and hour buckets for their retention, so a range reaching further back is widened to
the hour, or to the local day, and the answer says which range it covers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

Grain = Literal["minute", "hour", "day", "week"]
Interval = Literal["hour", "day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("hour", "day", "week", "month")

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _local(t: datetime, tz: tzinfo) -> datetime:
    # `astimezone` reads a naive datetime in the host's zone, and a naive datetime never equals
    # an aware one: either would silently move a bucket boundary. Callers attach a zone first.
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t.isoformat()}: bucket arithmetic needs an offset")
    return t.astimezone(tz)


def floor_minute(t: datetime) -> datetime:
    """The UTC minute containing `t` (which must carry an offset, as every boundary here)."""
    return _local(t, UTC).replace(second=0, microsecond=0)


def ceil_minute(t: datetime) -> datetime:
    """The first minute boundary at or after `t`."""
    floored = floor_minute(t)
    return floored if floored == t else floored + MINUTE


def floor_hour(t: datetime, tz: ZoneInfo) -> datetime:
    """The first instant of the local hour containing `t`."""
    local = _local(t, tz)
    delta = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
    return (t - delta).astimezone(UTC)


def ceil_hour(t: datetime, tz: ZoneInfo) -> datetime:
    """The first local hour boundary at or after `t`."""
    floored = floor_hour(t, tz)
    return floored if floored == t else floored + HOUR


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local date, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def floor_day(t: datetime, tz: ZoneInfo) -> datetime:
    """The first instant of the local day containing `t`."""
    return day_start(_local(t, tz).date(), tz)


def ceil_day(t: datetime, tz: ZoneInfo) -> datetime:
    """The first local midnight at or after `t`."""
    floored = floor_day(t, tz)
    if floored == t:
        return floored
    return day_start(t.astimezone(tz).date() + timedelta(days=1), tz)


@dataclass(frozen=True, slots=True)
class EventBuckets:
    """The three buckets an event is counted in."""

    minute: datetime
    hour: datetime
    day: datetime
    week: datetime


def event_buckets(occurred_at: datetime, tz: ZoneInfo) -> EventBuckets:
    """The minute, local hour, local day and local ISO week of an event's `occurred_at`."""
    return EventBuckets(
        minute=floor_minute(occurred_at),
        hour=floor_hour(occurred_at, tz),
        day=floor_day(occurred_at, tz),
        week=floor_interval(occurred_at, "week", tz),
    )


@dataclass(frozen=True, slots=True)
class Horizons:
    """The oldest instants from which minute and hour buckets are complete."""

    minute: datetime
    hour: datetime


@dataclass(frozen=True, slots=True)
class Coverage:
    """The range actually answered and the stored buckets [start, end) per grain that make it."""

    start: datetime
    end: datetime
    ranges: tuple[tuple[Grain, datetime, datetime], ...]


def cover(start: datetime, end: datetime, tz: ZoneInfo, horizons: Horizons) -> Coverage:
    """Decompose [start, end) into stored buckets, widening it where fine buckets are gone."""
    a = floor_minute(start)
    b = ceil_minute(end)
    if a < horizons.minute:
        a = floor_hour(a, tz)
    if a < horizons.hour:
        a = floor_day(a, tz)
    # A short range may still need fine buckets that are gone: widen its end until every
    # piece is answerable (at most to the end of the local day).
    while True:
        if b <= a:
            return Coverage(a, a, ())
        ranges = _decompose(a, b, tz)
        if any(g == "hour" and s < horizons.hour for g, s, _ in ranges):
            b = ceil_day(b + MINUTE, tz) if ceil_day(b, tz) == b else ceil_day(b, tz)
        elif any(g == "minute" and s < horizons.minute for g, s, _ in ranges):
            b = ceil_hour(b + MINUTE, tz) if ceil_hour(b, tz) == b else ceil_hour(b, tz)
        else:
            return Coverage(a, b, tuple(ranges))


def _decompose(a: datetime, b: datetime, tz: ZoneInfo) -> list[tuple[Grain, datetime, datetime]]:
    ranges: list[tuple[Grain, datetime, datetime]] = []
    d0 = ceil_day(a, tz)
    d1 = floor_day(b, tz)
    if d0 < d1:
        ranges += _cover_hours(a, d0, tz)
        ranges.append(("day", d0, d1))
        ranges += _cover_hours(d1, b, tz)
    else:
        ranges += _cover_hours(a, b, tz)
    return [r for r in ranges if r[1] < r[2]]


def with_weeks(
    ranges: tuple[tuple[Grain, datetime, datetime], ...], tz: ZoneInfo
) -> tuple[tuple[Grain, datetime, datetime], ...]:
    """The same coverage with its whole local weeks (Monday to Monday) read from week buckets."""
    out: list[tuple[Grain, datetime, datetime]] = []
    for grain, start, end in ranges:
        if grain != "day":
            out.append((grain, start, end))
            continue
        w0 = floor_interval(start, "week", tz)
        if w0 < start:
            w0 = next_interval(w0, "week", tz)
        w1 = floor_interval(end, "week", tz)
        if w0 < w1:
            out += [("day", start, w0), ("week", w0, w1), ("day", w1, end)]
        else:
            out.append((grain, start, end))
    return tuple(r for r in out if r[1] < r[2])


def _cover_hours(a: datetime, b: datetime, tz: ZoneInfo) -> list[tuple[Grain, datetime, datetime]]:
    h0 = ceil_hour(a, tz)
    h1 = floor_hour(b, tz)
    if h0 < h1:
        return [("minute", a, h0), ("hour", h0, h1), ("minute", h1, b)]
    return [("minute", a, b)]


def floor_interval(t: datetime, interval: Interval, tz: ZoneInfo) -> datetime:
    """The start of the local hour, day, ISO week (Monday) or month containing `t`."""
    if interval == "hour":
        return floor_hour(t, tz)
    local = _local(t, tz).date()
    if interval == "day":
        return day_start(local, tz)
    if interval == "week":
        return day_start(local - timedelta(days=local.weekday()), tz)
    return day_start(local.replace(day=1), tz)


def next_interval(t: datetime, interval: Interval, tz: ZoneInfo) -> datetime:
    """The start of the interval after the one starting at `t`."""
    if interval == "hour":
        return t + HOUR
    local = _local(t, tz).date()
    if interval == "day":
        return day_start(local + timedelta(days=1), tz)
    if interval == "week":
        return day_start(local + timedelta(days=7), tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return day_start(date(year, month, 1), tz)


def interval_starts(
    start: datetime, end: datetime, interval: Interval, tz: ZoneInfo
) -> Iterator[datetime]:
    """Starts of the local intervals that overlap [start, end)."""
    current = floor_interval(start, interval, tz)
    while current < end:
        yield current
        current = next_interval(current, interval, tz)

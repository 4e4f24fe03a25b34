"""Business-time arithmetic for SLA deadlines and quiet-hour windows. Pure and zone-aware.

Arithmetic happens in UTC; wall-clock times are turned into instants through the team's zone,
so a deadline across a daylight-saving change is still right.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cxloop_closed_loop.config import WEEKDAYS, BusinessHours, QuietHours

_MAX_DAYS = 3660


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _window(day: date, hours: BusinessHours, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The working window that starts on `day` (UTC instants), or None when there is none.

    The window belongs to the day it starts on, so a weekday or holiday of `day` decides an
    overnight window too. Both ends go through the zone separately: a window across a
    daylight-saving change is an hour shorter or longer, and `00:00`-`24:00` windows abut.
    """
    if WEEKDAYS[day.weekday()] not in hours.days or day in hours.holidays:
        return None
    closing_day = day + timedelta(days=1) if hours.overnight else day
    return _instant(day, hours.start, zone), _instant(closing_day, hours.end, zone)


def add_business_time(
    start: datetime, duration: timedelta, hours: BusinessHours, zone: ZoneInfo
) -> datetime:
    """The instant when `duration` of business time has passed since `start` (UTC)."""
    current = start.astimezone(UTC)
    remaining = duration
    # From the day before: an overnight window opened yesterday may still be open.
    day = current.astimezone(zone).date() - timedelta(days=1)
    for _ in range(_MAX_DAYS):
        window = _window(day, hours, zone)
        if window is not None:
            opens, closes = window
            current = max(current, opens)
            if current < closes:
                available = closes - current
                if remaining <= available:
                    return current + remaining
                remaining -= available
        day += timedelta(days=1)
    raise ValueError("business hours leave no working time within ten years")


def business_time_between(
    start: datetime, end: datetime, hours: BusinessHours, zone: ZoneInfo
) -> timedelta:
    """Business time elapsed from `start` to `end` (zero when end is before start)."""
    total = timedelta()
    if end <= start:
        return total
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        window = _window(day, hours, zone)
        if window is not None:
            opens = max(window[0], start)
            closes = min(window[1], end)
            if closes > opens:
                total += closes - opens
        day += timedelta(days=1)
    return total


def quiet_until(now: datetime, quiet: QuietHours | None) -> datetime | None:
    """When the quiet window `now` falls in ends (UTC), or None outside quiet hours."""
    if quiet is None or quiet.start == quiet.end:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    today = local.date()
    if quiet.start < quiet.end:
        if quiet.start <= clock < quiet.end:
            return _instant(today, quiet.end, zone)
        return None
    if clock >= quiet.start:
        return _instant(today + timedelta(days=1), quiet.end, zone)
    if clock < quiet.end:
        return _instant(today, quiet.end, zone)
    return None

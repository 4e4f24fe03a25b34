"""The time ranges a KPI request asks for, and the aligned periods a comparison needs.

- `from` and `to` without an offset (`2026-11-24`, `2026-11-24T08:00`) are wall-clock times of
  the reporting time zone, a date its local midnight; `to` is exclusive. A wall-clock time that
  a daylight-saving change skips or repeats is read with the offset before the change (PEP 495,
  fold=0).
- Events occur only within [EARLIEST, LATEST) (1970 to 2099, see `cxschema.events`), so a range
  reaching beyond is cut to that, and one lying wholly outside is refused. The cut also keeps
  every later step clear of the calendar's ends, where converting between zones overflows.
- Two compared periods adjoin and are equally long, and each must be answered exactly by the
  stored buckets: their boundaries fall on the grain that the older period needs (the minute,
  the local hour, or local midnight, where minute or hour buckets are gone).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cxloop_metrics.buckets import (
    Coverage,
    Horizons,
    ceil_day,
    ceil_hour,
    ceil_minute,
    cover,
    day_start,
    floor_day,
    floor_hour,
    floor_minute,
)
from cxschema.events import EARLIEST, LATEST

DAY = timedelta(days=1)


class ReportError(ValueError):
    """A request that cannot be answered as asked; the API answers 422 naming `field`."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def local_instant(t: datetime, tz: ZoneInfo) -> datetime:
    """`t` itself if it carries an offset, else the wall-clock time `t` in `tz`."""
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def requested_range(
    start: datetime | None, end: datetime | None, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """The query's `from` and `to` as UTC instants cut to [EARLIEST, LATEST]; None if not given.

    Raises ReportError when `to` is not after `from`, or when the range lies wholly where no
    event can be.
    """
    a = None if start is None else local_instant(start, tz)
    b = None if end is None else local_instant(end, tz)
    # Aware datetimes compare safely anywhere in the calendar; only conversions can overflow,
    # so nothing is converted before it is cut to the events' range.
    if a is not None and b is not None and b <= a:
        raise ReportError(
            f"`to` ({b.isoformat()}) must be after `from` ({a.isoformat()})", field="to"
        )
    if a is not None and a >= LATEST:
        raise ReportError(
            f"`from` must be before {LATEST.date().isoformat()}: no event occurs later",
            field="from",
        )
    if b is not None and b <= EARLIEST:
        raise ReportError(
            f"`to` must be after {EARLIEST.date().isoformat()}: no event occurs earlier",
            field="to",
        )
    return (
        None if a is None else max(a, EARLIEST).astimezone(UTC),
        None if b is None else min(b, LATEST).astimezone(UTC),
    )


def explicit_range(
    start: datetime | None, end: datetime | None, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """Both `from` and `to`, read as in `requested_range`; ReportError if either is missing."""
    a, b = requested_range(start, end, tz)
    if a is None:
        raise ReportError("give `from` with `to` (or a `window` instead of both)", field="from")
    if b is None:
        raise ReportError("give `to` with `from` (or a `window` instead of both)", field="to")
    return a, b


def _boundaries(
    start: datetime, end: datetime, grain: str, tz: ZoneInfo, *, keep_length: bool
) -> tuple[datetime, datetime, datetime]:
    if grain == "day":
        last = ceil_day(end, tz).astimezone(tz).date()
        if keep_length:
            first = last - timedelta(days=max(1, round((end - start) / DAY)))
        else:
            first = start.astimezone(tz).date()
        days = last - first
        return day_start(first - days, tz), day_start(first, tz), day_start(last, tz)
    if grain == "hour":
        x2 = ceil_hour(end, tz)
        x1 = x2 - (end - start) if keep_length else floor_hour(start, tz)
    else:
        x2 = ceil_minute(end)
        x1 = x2 - (end - start) if keep_length else floor_minute(start)
    return x1 - (x2 - x1), x1, x2


def _finest_grain(t: datetime, horizons: Horizons) -> str:
    if t >= horizons.minute:
        return "minute"
    if t >= horizons.hour:
        return "hour"
    return "day"


_GRAINS = ("minute", "hour", "day")


def adjoining_periods(
    start: datetime, end: datetime, *, tz: ZoneInfo, horizons: Horizons, keep_length: bool
) -> tuple[Coverage, Coverage]:
    """[start, end) and the period just before it: adjoining, equally long, each exact.

    Returns (previous, current). Both are aligned to the grain the older period needs: the
    minute, the local hour, or local midnight (then both are equally many local days, which a
    daylight-saving change can make an hour longer or shorter). With `keep_length` the pair
    moves forward to the first such boundary at or after `end` and keeps its length (a rolling
    window); without, [start, end) widens to the boundaries around it (an asked range), and
    a range of whole local days is compared with as many local days.
    """
    grains = _GRAINS[_GRAINS.index(_finest_grain(start - (end - start), horizons)) :]
    if not keep_length and floor_day(start, tz) == start and floor_day(end, tz) == end:
        # Asked in whole local days (`from=2026-11-01&to=2026-11-08`): compare with as many
        # local days before, not with 168 hours that a daylight-saving change shifts.
        grains = ("day",)
    for grain in grains:
        x0, x1, x2 = _boundaries(start, end, grain, tz, keep_length=keep_length)
        previous = cover(x0, x1, tz, horizons)
        current = cover(x1, x2, tz, horizons)
        exact = (previous.start, previous.end, current.start, current.end) == (x0, x1, x1, x2)
        # Local midnights are bucket boundaries, so the last grain is exact in any zone whose
        # offset is whole minutes.
        if exact or grain == grains[-1]:
            return previous, current
    raise AssertionError("returns at the last grain")

"""Report building: time ranges and groups in, KPI reports out (the service layer of the API)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from cxloop_metrics import repository
from cxloop_metrics.buckets import (
    Coverage,
    Grain,
    Horizons,
    Interval,
    ceil_minute,
    cover,
    interval_starts,
    next_interval,
)
from cxloop_metrics.config import KpiConfig
from cxloop_metrics.kpis import Kpis, compare_kpis, compute_kpis
from cxloop_metrics.measures import Totals
from cxloop_metrics.ranges import ReportError, adjoining_periods, explicit_range, requested_range
from cxloop_metrics.repository import Filters, GroupKey
from cxloop_metrics.schemas import (
    ComparedGroup,
    ComparisonReport,
    KpiReport,
    Series,
    SeriesPoint,
    Side,
    TimeSeriesReport,
    change_out,
    kpi_group,
)
from cxschema.events import EARLIEST

WINDOW_LENGTHS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "28d": timedelta(days=28),
    "90d": timedelta(days=90),
}
Metric = Literal["nps", "csat", "ces", "sentiment", "negative_share", "responses"]
METRICS: tuple[Metric, ...] = ("nps", "csat", "ces", "sentiment", "negative_share", "responses")
DEFAULT_SPANS: dict[str, timedelta] = {
    "hour": timedelta(hours=48),
    "day": timedelta(days=28),
    "week": timedelta(weeks=12),
    "month": timedelta(days=365),
}
MAX_POINTS = 2000


@dataclass(frozen=True)
class ReportContext:
    """What every report needs besides the request."""

    config: KpiConfig
    tz: ZoneInfo
    timezone: str
    min_sample: int
    lateness: timedelta
    hour_retention: timedelta

    def horizons(self, now: datetime) -> Horizons:
        """From when minute and hour buckets are complete."""
        return Horizons(minute=now - self.lateness, hour=now - self.hour_retention)


@dataclass(frozen=True)
class Slice:
    """Which groups to report and which events to include."""

    group_by: tuple[str, ...]
    filters: Filters
    touchpoint_level: int | None = None


def window_coverage(
    ctx: ReportContext,
    *,
    window: str | None,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> Coverage:
    """The buckets of a named window ending now, or of an explicit [start, end).

    `start` and `end` are read as `ranges.requested_range` reads them (naive ones in the
    reporting zone, cut to the years events can have).
    """
    if start is not None or end is not None:
        a, b = explicit_range(start, end, ctx.tz)
        return cover(a, b, ctx.tz, ctx.horizons(now))
    length = WINDOW_LENGTHS[window or "7d"]
    stop = ceil_minute(now)
    return cover(stop - length, stop, ctx.tz, ctx.horizons(now))


def _group_totals(
    ctx: ReportContext,
    rows: Sequence[tuple[datetime | None, GroupKey, Totals]],
    sl: Slice,
) -> dict[GroupKey, Totals]:
    merged: dict[GroupKey, Totals] = {}
    tp_index = sl.group_by.index("touchpoint") if "touchpoint" in sl.group_by else None
    for _, raw_key, totals in rows:
        key = raw_key
        if tp_index is not None and sl.touchpoint_level is not None:
            rolled = ctx.config.taxonomy.at_level(key[tp_index], sl.touchpoint_level)
            key = (*key[:tp_index], rolled, *key[tp_index + 1 :])
        merged.setdefault(key, Totals()).add(totals)
    return merged


async def group_kpis(
    session: AsyncSession, ctx: ReportContext, *, coverage: Coverage, sl: Slice
) -> dict[GroupKey, Kpis]:
    """KPIs per group over a coverage; without group_by, exactly one group keyed ()."""
    rows = await repository.fetch_totals(
        session, coverage, filters=sl.filters, group_dims=sl.group_by, tz=ctx.tz
    )
    totals = _group_totals(ctx, rows, sl)
    if not sl.group_by and () not in totals:
        totals[()] = Totals()
    return {
        key: compute_kpis(t, ctx.config, min_sample=ctx.min_sample) for key, t in totals.items()
    }


def _ordered(groups: dict[GroupKey, Kpis]) -> list[tuple[GroupKey, Kpis]]:
    return sorted(groups.items(), key=lambda item: (-item[1].responses, item[0]))


async def kpi_report(
    session: AsyncSession,
    ctx: ReportContext,
    *,
    window: str | None,
    start: datetime | None,
    end: datetime | None,
    sl: Slice,
    now: datetime | None = None,
) -> KpiReport:
    """GET /v1/kpis: every KPI with n, interval and low_sample, per group."""
    now = now or datetime.now(UTC)
    coverage = window_coverage(ctx, window=window, start=start, end=end, now=now)
    groups = await group_kpis(session, ctx, coverage=coverage, sl=sl)
    return KpiReport(
        window=None if start is not None or end is not None else (window or "7d"),
        from_=coverage.start,
        to=coverage.end,
        timezone=ctx.timezone,
        min_sample=ctx.min_sample,
        groups=[
            kpi_group(dict(zip(sl.group_by, key, strict=True)), k) for key, k in _ordered(groups)
        ],
    )


def _metric_point(metric: Metric, k: Kpis) -> tuple[float | None, int, tuple[float, float] | None]:
    if metric == "nps":
        return k.nps.score, k.nps.n, k.nps.ci95
    if metric == "csat":
        return k.csat.top2_pct, k.csat.n, k.csat.ci95
    if metric == "ces":
        return k.ces.mean, k.ces.n, k.ces.ci95
    if metric == "sentiment":
        return k.sentiment.avg, k.sentiment.n, k.sentiment.avg_ci95
    if metric == "negative_share":
        return k.sentiment.negative_share, k.sentiment.n, k.sentiment.negative_share_ci95
    return float(k.responses), k.responses, None


async def timeseries_report(
    session: AsyncSession,
    ctx: ReportContext,
    *,
    metric: Metric,
    interval: Interval,
    start: datetime | None,
    end: datetime | None,
    sl: Slice,
    now: datetime | None = None,
) -> TimeSeriesReport:
    """GET /v1/kpis/timeseries: one point per local hour/day/week/month, per group."""
    now = now or datetime.now(UTC)
    asked_start, asked_end = requested_range(start, end, ctx.tz)
    stop = ceil_minute(now) if asked_end is None else asked_end
    first = stop - DEFAULT_SPANS[interval] if asked_start is None else asked_start
    if stop <= first:
        # Only a defaulted `to` (now) can end up before `from`: asked ones are checked above.
        raise ReportError(
            f"`from` ({first.isoformat()}) lies in the future; give a `to` after it",
            field="from",
        )
    horizons = ctx.horizons(now)
    starts = list(itertools.islice(interval_starts(first, stop, interval, ctx.tz), MAX_POINTS + 1))
    if len(starts) > MAX_POINTS:
        raise ReportError(
            f"more than {MAX_POINTS} {interval}s from {first.isoformat()} to {stop.isoformat()}; "
            f"at most {MAX_POINTS} points per series: ask for a shorter range or a coarser "
            "`interval`",
            field="from",
        )
    if interval == "hour" and starts[0] < horizons.hour:
        raise ReportError(
            f"hourly buckets are kept for {ctx.hour_retention.days} days; "
            "ask for a later `from` or a coarser interval",
            field="from",
        )
    ends = [*starts[1:], min(next_interval(starts[-1], interval, ctx.tz), stop)]
    ranges: list[tuple[Grain, datetime, datetime]] = []
    for s, e in zip(starts, ends, strict=True):
        ranges.extend(cover(s, e, ctx.tz, horizons).ranges)
    coverage = Coverage(starts[0], ends[-1], tuple(ranges))
    rows = await repository.fetch_totals(
        session, coverage, filters=sl.filters, group_dims=sl.group_by, by_bucket=True
    )
    per_point: dict[GroupKey, list[Totals]] = {}
    for bucket, key, totals in rows:
        assert bucket is not None
        index = bisect.bisect_right(starts, bucket) - 1
        grouped = _group_totals(ctx, [(None, key, totals)], sl)
        for gkey, gtotals in grouped.items():
            points = per_point.setdefault(gkey, [Totals() for _ in starts])
            points[index].add(gtotals)
    if not sl.group_by and () not in per_point:
        per_point[()] = [Totals() for _ in starts]
    series = []
    for key, points in sorted(per_point.items(), key=lambda item: item[0]):
        out = []
        for s, e, t in zip(starts, ends, points, strict=True):
            k = compute_kpis(t, ctx.config, min_sample=ctx.min_sample)
            value, n, ci = _metric_point(metric, k)
            out.append(
                SeriesPoint(
                    start=s.astimezone(ctx.tz),
                    end=e.astimezone(ctx.tz),
                    value=value,
                    n=n,
                    ci95=ci,
                    low_sample=n < ctx.min_sample,
                )
            )
        series.append(Series(key=dict(zip(sl.group_by, key, strict=True)), points=out))
    return TimeSeriesReport(
        metric=metric,
        interval=interval,
        timezone=ctx.timezone,
        from_=starts[0],
        to=ends[-1],
        series=series,
    )


def _filters_out(filters: Filters) -> dict[str, list[str]]:
    out = {d: sorted(v) for d, v in filters.values.items() if v}
    if filters.touchpoint_subtrees:
        out["touchpoint"] = sorted(set(out.get("touchpoint", [])) | filters.touchpoint_subtrees)
    return out


async def compare_report(
    session: AsyncSession,
    ctx: ReportContext,
    *,
    window: str | None,
    start: datetime | None,
    end: datetime | None,
    sl: Slice,
    b_slice: Slice | None,
    a_label: str,
    b_label: str,
    now: datetime | None = None,
) -> ComparisonReport:
    """GET /v1/kpis/compare.

    Without `b_slice` (period mode): the window ending now, or [start, end), against the period
    of equal length just before it (`ranges.adjoining_periods` aligns both). With it (segment
    mode): two slices over the same window or range; `sl` is side a.
    """
    now = now or datetime.now(UTC)
    ranged = start is not None or end is not None
    if b_slice is None:
        if ranged:
            first, last = explicit_range(start, end, ctx.tz)
            keep_length = False
        else:
            last = ceil_minute(now)
            first = last - WINDOW_LENGTHS[window or "7d"]
            keep_length = True
        a_cov, b_cov = adjoining_periods(
            first, last, tz=ctx.tz, horizons=ctx.horizons(now), keep_length=keep_length
        )
        if a_cov.start < EARLIEST:
            raise ReportError(
                f"the period before `from` would begin {a_cov.start.isoformat()}, before "
                f"{EARLIEST.date().isoformat()}, when no event occurred; ask for a later `from`",
                field="from",
            )
        a_sl, b_sl, mode = sl, sl, "period"
    else:
        current = window_coverage(ctx, window=window, start=start, end=end, now=now)
        a_cov, b_cov, a_sl, b_sl, mode = current, current, sl, b_slice, "segment"
    a_groups = await group_kpis(session, ctx, coverage=a_cov, sl=a_sl)
    b_groups = await group_kpis(session, ctx, coverage=b_cov, sl=b_sl)
    empty = compute_kpis(Totals(), ctx.config, min_sample=ctx.min_sample)
    keys = sorted(set(a_groups) | set(b_groups))
    compared = []
    for key in keys:
        a = a_groups.get(key, empty)
        b = b_groups.get(key, empty)
        named = dict(zip(sl.group_by, key, strict=True))
        compared.append(
            ComparedGroup(
                key={k: v or None for k, v in named.items()},
                a=kpi_group(named, a),
                b=kpi_group(named, b),
                changes={name: change_out(c) for name, c in compare_kpis(a, b).items()},
            )
        )
    compared.sort(key=lambda g: -(g.a.responses + g.b.responses))
    return ComparisonReport(
        mode=mode,
        window=None if ranged else (window or "7d"),
        a=Side(label=a_label, from_=a_cov.start, to=a_cov.end, filters=_filters_out(a_sl.filters)),
        b=Side(label=b_label, from_=b_cov.start, to=b_cov.end, filters=_filters_out(b_sl.filters)),
        groups=compared,
    )

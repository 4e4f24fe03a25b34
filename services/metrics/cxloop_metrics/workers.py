"""Background loops beside the consumer: Prometheus KPI gauges and retention pruning."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics import repository
from cxloop_metrics.kpis import compute_kpis
from cxloop_metrics.labels import OTHER
from cxloop_metrics.measures import Totals
from cxloop_metrics.reports import ReportContext, Slice, window_coverage
from cxloop_metrics.repository import Filters
from cxruntime.periodic import PeriodicWorker

log = logging.getLogger(__name__)

_LABELS = ["touchpoint", "channel", "window"]
NPS = Gauge("cx_nps", "Net Promoter Score (-100..100) over the window.", _LABELS)
NPS_N = Gauge("cx_nps_responses", "NPS answers behind cx_nps.", _LABELS)
CSAT = Gauge("cx_csat_top2_pct", "CSAT top-2-box percentage over the window.", _LABELS)
CES = Gauge("cx_ces_mean", "Mean Customer Effort Score (1-7, 7 = very easy).", _LABELS)
SENTIMENT = Gauge("cx_sentiment_avg", "Mean sentiment score (-1..1) of comments.", _LABELS)
RESPONSES = Gauge("cx_kpi_responses", "Responses in the window.", _LABELS)
REFRESHED = Gauge("cx_metrics_gauges_refreshed_timestamp_seconds", "Last gauge refresh.")
_GAUGES = (NPS, NPS_N, CSAT, CES, SENTIMENT, RESPONSES)


class GaugeRefresher(PeriodicWorker):
    """Recomputes the KPI gauges from the buckets, per (touchpoint, channel, window).

    Touchpoints are bounded: the `max_touchpoints` busiest of the longest window keep their
    name, the rest is summed into "other" (sums are additive, so that KPI is exact too).
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], ctx: ReportContext, every: timedelta
    ) -> None:
        super().__init__(interval_s=every.total_seconds())
        self._sessions = sessions
        self._ctx = ctx

    async def tick(self) -> None:
        """Query each configured window grouped by touchpoint and channel; set the gauges."""
        ctx = self._ctx
        now = datetime.now(UTC)
        sl = Slice(group_by=("touchpoint", "channel"), filters=Filters(values={}))
        results: dict[str, dict[tuple[str, str], Totals]] = {}
        async with self._sessions() as session:
            for window in ctx.config.prometheus.windows:
                coverage = window_coverage(ctx, window=window, start=None, end=None, now=now)
                rows = await repository.fetch_totals(
                    session, coverage, filters=sl.filters, group_dims=sl.group_by, tz=ctx.tz
                )
                merged: dict[tuple[str, str], Totals] = {}
                for _, key, totals in rows:
                    merged.setdefault((key[0], key[1]), Totals()).add(totals)
                results[window] = merged
        volume: dict[str, int] = {}
        for merged in results.values():
            for (tp, _), totals in merged.items():
                volume[tp] = volume.get(tp, 0) + totals.responses
        limit = ctx.config.prometheus.max_touchpoints
        kept = set(sorted(volume, key=lambda tp: (-volume[tp], tp))[:limit])
        for gauge in _GAUGES:
            gauge.clear()
        for window, merged in results.items():
            bounded: dict[tuple[str, str], Totals] = {}
            for (tp, ch), totals in merged.items():
                label = tp if tp in kept else OTHER
                bounded.setdefault((label, ch), Totals()).add(totals)
            for (tp, ch), totals in bounded.items():
                k = compute_kpis(totals, ctx.config, min_sample=ctx.min_sample)
                labels = (tp, ch, window)
                RESPONSES.labels(*labels).set(k.responses)
                NPS_N.labels(*labels).set(k.nps.n)
                if k.nps.score is not None:
                    NPS.labels(*labels).set(k.nps.score)
                if k.csat.top2_pct is not None:
                    CSAT.labels(*labels).set(k.csat.top2_pct)
                if k.ces.mean is not None:
                    CES.labels(*labels).set(k.ces.mean)
                if k.sentiment.avg is not None:
                    SENTIMENT.labels(*labels).set(k.sentiment.avg)
        REFRESHED.set(now.timestamp())


class Pruner(PeriodicWorker):
    """Deletes minute and hour buckets and dedup uids past their retention."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        every: timedelta,
        minute_retention: timedelta,
        hour_retention: timedelta,
        dedup_retention: timedelta,
    ) -> None:
        super().__init__(interval_s=every.total_seconds())
        self._sessions = sessions
        self._minute = minute_retention
        self._hour = hour_retention
        self._dedup = dedup_retention

    async def tick(self) -> None:
        """One pruning pass in its own transaction."""
        now = datetime.now(UTC)
        minute_before, hour_before = repository.retention_cutoffs(
            now, minute=self._minute, hour=self._hour
        )
        async with self._sessions() as session, session.begin():
            counts = await repository.prune(
                session,
                minute_before=minute_before,
                hour_before=hour_before,
                seen_before=now - self._dedup,
            )
        if any(counts.values()):
            log.info("pruned %s", counts)

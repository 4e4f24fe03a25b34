"""Prometheus KPI gauges refreshed from the buckets, with bounded touchpoint labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics.config import KpiConfig, PrometheusLabels
from cxloop_metrics.reports import ReportContext
from cxloop_metrics.workers import GaugeRefresher
from tests.metrics.factories import enriched
from tests.metrics.test_api import _processor, feed

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def _gauge(name: str, touchpoint: str, channel: str, window: str) -> float | None:
    return REGISTRY.get_sample_value(
        name, {"touchpoint": touchpoint, "channel": channel, "window": window}
    )


async def test_gauges_bound_touchpoints_and_merge_the_rest_exactly(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = (
        [
            enriched(
                f"d{i}",
                occurred_at=NOW - timedelta(minutes=5),
                touchpoint="delivery",
                nps=10,
                ces=6,
            )
            for i in range(5)
        ]
        + [enriched("c0", occurred_at=NOW - timedelta(minutes=5), touchpoint="checkout", nps=0)]
        + [enriched("s0", occurred_at=NOW - timedelta(minutes=5), touchpoint="support", nps=9)]
    )
    await feed(_processor(db_sessions), events)
    ctx = ReportContext(
        config=KpiConfig(prometheus=PrometheusLabels(windows=("24h", "7d"), max_touchpoints=1)),
        tz=ZoneInfo("Europe/Berlin"),
        timezone="Europe/Berlin",
        min_sample=30,
        lateness=timedelta(days=7),
        hour_retention=timedelta(days=35),
    )
    await GaugeRefresher(db_sessions, ctx, timedelta(seconds=30)).tick()
    for window in ("24h", "7d"):
        assert _gauge("cx_nps", "delivery", "web", window) == 100.0
        assert _gauge("cx_ces_mean", "delivery", "web", window) == 6.0
        assert _gauge("cx_kpi_responses", "delivery", "web", window) == 5
        # checkout (0) and support (9) fall under "other": 1 promoter, 1 detractor -> 0.
        assert _gauge("cx_nps", "other", "web", window) == 0.0
        assert _gauge("cx_kpi_responses", "other", "web", window) == 2
        assert _gauge("cx_nps", "checkout", "web", window) is None
    assert _gauge("cx_nps", "delivery", "web", "28d") is None

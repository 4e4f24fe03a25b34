"""The KPI API over a real PostgreSQL, fed through the consumer's `handle`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics.config import KpiConfig, Taxonomy
from cxloop_metrics.labels import LabelLimiter
from cxloop_metrics.main import create_app
from cxloop_metrics.processor import MetricsProcessor
from cxloop_metrics.reports import ReportContext
from cxloop_metrics.settings import MetricsSettings
from cxruntime import apikeys
from cxruntime.auth import Authenticator
from cxruntime.consumer import Consumed, Decoded
from cxschema import ENRICHED, FeedbackEnriched
from tests.metrics.factories import enriched, value

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def _processor(
    sessions: async_sessionmaker[AsyncSession], *, writer_dsn: str | None = None
) -> MetricsProcessor:
    settings = MetricsSettings()
    return MetricsProcessor(
        sessions,
        tz=settings.tz,
        lateness=settings.metrics_lateness,
        hour_retention=settings.metrics_hour_retention,
        touchpoint_labels=LabelLimiter(5),
        writer_dsn=writer_dsn,
    )


async def feed(
    processor: MetricsProcessor, events: list[FeedbackEnriched], *, first_offset: int = 0
) -> None:
    """Hand the events to `handle` as one batch of partition 0."""
    batch = []
    for i, event in enumerate(events):
        record = Consumed(ENRICHED, 0, first_offset + i, None, value(event), (), 0)
        batch.append(Decoded(record, processor.decode(record)))
    positions = {TopicPartition(ENRICHED, 0): first_offset + len(events)}
    await processor.handle(batch, positions)


@pytest.fixture
async def client(db_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[httpx.AsyncClient]:
    settings = MetricsSettings(metrics_min_sample=3)
    app: FastAPI = create_app(settings)
    app.state.sessions = db_sessions
    app.state.authenticator = Authenticator(db_sessions)
    app.state.report_context = ReportContext(
        config=KpiConfig(taxonomy=Taxonomy(parents={"parcel_locker": "delivery"})),
        tz=settings.tz,
        timezone=settings.metrics_timezone,
        min_sample=3,
        lateness=settings.metrics_lateness,
        hour_retention=settings.metrics_hour_retention,
    )
    async with db_sessions() as s, s.begin():
        _, reader = await apikeys.create_key(s, name="reader", scopes=["read"])
        _, ingest = await apikeys.create_key(s, name="ingest", scopes=["ingest"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://metrics",
        headers={"Authorization": f"Bearer {reader}"},
    ) as http:
        http.headers["x-test-ingest-key"] = ingest
        yield http


def _events() -> list[FeedbackEnriched]:
    specs: list[dict[str, Any]] = [
        {"channel": "web", "touchpoint": "delivery.tracking", "nps": 10, "csat": 5, "ces": 7},
        {"channel": "web", "touchpoint": "delivery", "nps": 9, "csat": 4, "ces": 6},
        {
            "channel": "web",
            "touchpoint": "parcel_locker",
            "nps": 3,
            "csat": 2,
            "ces": 2,
            "comment": "Fach klemmt",
            "sentiment": ("negative", -0.8),
        },
        {
            "channel": "app",
            "touchpoint": "checkout",
            "nps": 7,
            "csat": 3,
            "ces": 4,
            "comment": "ok",
            "sentiment": ("positive", 0.4),
        },
        {"channel": "app", "touchpoint": "checkout", "nps": 0, "region": "AT-9"},
    ]
    return [
        enriched(f"a{i}", occurred_at=NOW - timedelta(hours=2, minutes=i), **spec)
        for i, spec in enumerate(specs)
    ]


async def test_auth_problems(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/v1/kpis", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    wrong_scope = await client.get(
        "/v1/kpis", headers={"Authorization": f"Bearer {client.headers['x-test-ingest-key']}"}
    )
    assert wrong_scope.status_code == 403
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/openapi.json")).json()["paths"]["/v1/kpis/compare"]


async def test_kpis_group_filter_and_roll_up(
    client: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    empty = (await client.get("/v1/kpis")).json()
    assert [g["key"] for g in empty["groups"]] == [{}]
    assert empty["groups"][0]["responses"] == 0
    assert empty["groups"][0]["low_sample"] is True

    processor = _processor(db_sessions)
    events = _events()
    await feed(processor, events)
    # A redelivery of the same offsets and a re-sent duplicate at new offsets count nothing.
    await feed(processor, events)
    await feed(processor, events[:2], first_offset=5)

    total = (await client.get("/v1/kpis", params={"window": "24h"})).json()
    (group,) = total["groups"]
    assert group["key"] == {}
    assert group["responses"] == 5
    # NPS answers 10, 9, 3, 7, 0: 2 promoters, 2 detractors -> 0.
    assert group["nps"] == {**group["nps"], "promoters": 2, "passives": 1, "detractors": 2, "n": 5}
    assert group["nps"]["score"] == 0.0
    assert group["nps_ci95"] == group["nps"]["ci95"]
    assert group["csat"]["top2_pct"] == pytest.approx(50.0)
    assert group["ces"]["mean"] == pytest.approx(19 / 4)
    assert group["sentiment_avg"] == pytest.approx(-0.2)
    assert group["negative_share"] == pytest.approx(0.5)
    assert group["low_sample"] is False

    by_channel = (await client.get("/v1/kpis", params={"group_by": "channel"})).json()
    assert {g["key"]["channel"]: g["responses"] for g in by_channel["groups"]} == {
        "web": 3,
        "app": 2,
    }
    app_group = next(g for g in by_channel["groups"] if g["key"]["channel"] == "app")
    assert app_group["low_sample"] is True

    subtree = (await client.get("/v1/kpis", params={"touchpoint": "delivery"})).json()
    assert subtree["groups"][0]["responses"] == 3  # delivery, delivery.tracking, parcel_locker
    rolled = (
        await client.get("/v1/kpis", params={"group_by": "touchpoint", "touchpoint_level": "1"})
    ).json()
    assert {g["key"]["touchpoint"]: g["responses"] for g in rolled["groups"]} == {
        "delivery": 3,
        "checkout": 2,
    }
    two_dims = (
        await client.get("/v1/kpis", params={"group_by": "region,channel", "segment": "premium"})
    ).json()
    assert {
        (g["key"]["region"], g["key"]["channel"]): g["responses"] for g in two_dims["groups"]
    } == {
        ("DE-BY", "web"): 3,
        ("DE-BY", "app"): 1,
        ("AT-9", "app"): 1,
    }

    bad = await client.get("/v1/kpis", params={"group_by": "touchpoint,channel,region"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "group_by"
    assert (await client.get("/v1/kpis", params={"window": "3d"})).status_code == 422


async def test_timeseries_and_compare(
    client: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    processor = _processor(db_sessions)
    recent = _events()
    await feed(processor, recent)
    old = [
        enriched(f"old{i}", occurred_at=NOW - timedelta(days=9, hours=i), nps=10, ces=7)
        for i in range(4)
    ]
    await feed(processor, old, first_offset=100)

    series = (
        await client.get(
            "/v1/kpis/timeseries",
            params={
                "metric": "nps",
                "interval": "day",
                "from": (NOW - timedelta(days=13)).isoformat(),
            },
        )
    ).json()
    points = series["series"][0]["points"]
    assert len(points) in (14, 15)
    assert sum(p["n"] for p in points) == 9
    for p in points:
        start, end = datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"])
        scores = [
            e.scores.nps
            for e in recent + old
            if start <= e.occurred_at < end and e.scores.nps is not None
        ]
        assert p["n"] == len(scores)
        if scores:
            promoters = sum(1 for x in scores if x >= 9)
            detractors = sum(1 for x in scores if x <= 6)
            assert p["value"] == pytest.approx(100 * (promoters - detractors) / len(scores))
        else:
            assert p["value"] is None
    assert series["timezone"] == "Europe/Berlin"
    assert points[0]["start"].endswith(("+01:00", "+02:00"))

    hourly_too_old = await client.get(
        "/v1/kpis/timeseries",
        params={"interval": "hour", "from": (NOW - timedelta(days=60)).isoformat()},
    )
    assert hourly_too_old.status_code == 422

    period = (await client.get("/v1/kpis/compare", params={"window": "7d"})).json()
    (g,) = period["groups"]
    assert period["mode"] == "period"
    assert (g["a"]["responses"], g["b"]["responses"]) == (4, 5)
    assert g["changes"]["nps"]["diff"] == pytest.approx(-100.0)
    # From 100 to 0 on 4 and 5 answers is within sampling noise: adjusted-Wald difference
    # -0.571 +/- 1.96 * sqrt(0.0656 + 0.0859) = [-1.33, 0.19] includes 0.
    assert g["changes"]["nps"]["significant"] is False
    assert g["changes"]["nps"]["ci95"][0] < 0 < g["changes"]["nps"]["ci95"][1]

    segments = (
        await client.get(
            "/v1/kpis/compare",
            params={"window": "24h", "dimension": "channel", "a": "web", "b": "app"},
        )
    ).json()
    (s,) = segments["groups"]
    assert segments["a"]["filters"] == {"channel": ["web"]}
    assert (s["a"]["responses"], s["b"]["responses"]) == (3, 2)
    assert s["changes"]["nps"]["a"] == pytest.approx(100 / 3)
    assert s["changes"]["nps"]["b"] == pytest.approx(-50.0)

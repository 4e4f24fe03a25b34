"""The KPI API over a real PostgreSQL, fed through the consumer's `handle`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
BERLIN = ZoneInfo("Europe/Berlin")  # the default CX_METRICS_TIMEZONE the fixture runs with


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
    # CES 7, 6, 2, 4: 4.75 +/- t(0.975, 3) * 2.2174 / 2 = 4.75 +/- 3.53 is cut to the 1-7 scale.
    assert group["ces_ci95"][0] == pytest.approx(4.75 - 3.5283, abs=1e-3)
    assert group["ces_ci95"][1] == 7.0
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


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _problem_field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    field = response.json()["errors"][0]["field"]
    assert isinstance(field, str)
    return field


async def test_times_without_offset_are_read_in_the_reporting_zone(
    client: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    day = (datetime.now(UTC) - timedelta(days=2)).astimezone(BERLIN).date()
    midnight = datetime.combine(day, time(0), tzinfo=BERLIN)
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=BERLIN)
    events = [
        enriched("eve", occurred_at=midnight - timedelta(minutes=30), nps=0, csat=1, ces=1),
        enriched("early", occurred_at=midnight + timedelta(minutes=30), nps=10, csat=5),
        enriched("seven", occurred_at=midnight + timedelta(hours=7, minutes=31), nps=9, csat=4),
        enriched("after", occurred_at=midnight + timedelta(hours=7, minutes=32), nps=8, csat=4),
    ]
    await feed(_processor(db_sessions), events)
    d, d1 = day.isoformat(), (day + timedelta(days=1)).isoformat()

    # A date is local midnight (not UTC midnight) and `to` is exclusive.
    kpis = (await client.get("/v1/kpis", params={"from": d, "to": d1})).json()
    assert (_at(kpis["from"]), _at(kpis["to"])) == (midnight, next_midnight)
    assert kpis["window"] is None
    assert kpis["groups"][0]["responses"] == 3
    # A date-time without offset is a local wall-clock time; `to` stays on its minute.
    morning = (
        await client.get("/v1/kpis", params={"from": f"{d}T07:00:00", "to": f"{d}T07:32:00"})
    ).json()
    assert _at(morning["from"]) == midnight + timedelta(hours=7)
    assert _at(morning["to"]) == midnight + timedelta(hours=7, minutes=32)
    assert morning["groups"][0]["responses"] == 1

    # The time series reads them alike: the day-only and naive forms of the audit.
    series = await client.get(
        "/v1/kpis/timeseries", params={"metric": "csat", "interval": "day", "from": d, "to": d1}
    )
    assert series.status_code == 200, series.text
    (point,) = series.json()["series"][0]["points"]
    assert (_at(point["start"]), _at(point["end"])) == (midnight, next_midnight)
    assert point["n"] == 3
    for params in ({"from": d}, {"from": f"{d}T00:00:00"}, {"to": d1}):
        response = await client.get(
            "/v1/kpis/timeseries", params={"metric": "csat", "interval": "day", **params}
        )
        assert response.status_code == 200, (params, response.text)
        points = {_at(p["start"]): p["n"] for p in response.json()["series"][0]["points"]}
        assert points[midnight] == 3
    # So does the comparison, which now honours the range: the local day before is side a.
    compare = await client.get("/v1/kpis/compare", params={"from": d, "to": d1})
    assert compare.status_code == 200, compare.text
    body = compare.json()
    assert body["window"] is None
    assert (_at(body["b"]["from"]), _at(body["b"]["to"])) == (midnight, next_midnight)
    assert _at(body["a"]["to"]) == midnight
    assert _at(body["a"]["from"]) == datetime.combine(
        day - timedelta(days=1), time(0), tzinfo=BERLIN
    )
    (g,) = body["groups"]
    assert (g["a"]["responses"], g["b"]["responses"]) == (1, 3)
    segments = (
        await client.get(
            "/v1/kpis/compare",
            params={"from": d, "to": d1, "dimension": "touchpoint", "a": "x", "b": "delivery"},
        )
    ).json()
    assert (segments["groups"][0]["a"]["responses"], segments["groups"][0]["b"]["responses"]) == (
        0,
        3,
    )


async def test_ranges_beyond_the_calendar_of_events(
    client: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await feed(_processor(db_sessions), [enriched("one", occurred_at=NOW - timedelta(days=3))])
    # Cut to 1970..2099, where events can be; the answer says which range it covered.
    everything = await client.get(
        "/v1/kpis", params={"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}
    )
    assert everything.status_code == 200, everything.text
    body = everything.json()
    assert _at(body["from"]) == datetime(1970, 1, 1, tzinfo=BERLIN)
    assert _at(body["to"]) == datetime(2100, 1, 1, tzinfo=UTC)
    assert body["groups"][0]["responses"] == 1
    monthly = await client.get(
        "/v1/kpis/timeseries",
        params={
            "metric": "responses",
            "interval": "month",
            "from": "0001-01-01T00:00:00Z",
            "to": "9999-12-31T00:00:00Z",
        },
    )
    assert monthly.status_code == 200, monthly.text
    assert _at(monthly.json()["from"]) == datetime(1970, 1, 1, tzinfo=BERLIN)
    assert sum(p["n"] for p in monthly.json()["series"][0]["points"]) == 1

    daily = await client.get(
        "/v1/kpis/timeseries",
        params={
            "metric": "nps",
            "interval": "day",
            "from": "0001-01-01T00:00:00Z",
            "to": "2026-11-24T00:00:00Z",
        },
    )
    assert _problem_field(daily) == "from"
    assert "at most 2000 points" in daily.json()["detail"]
    for params, field in [
        ({"from": "2200-01-01", "to": "2300-01-01"}, "from"),
        ({"from": "0001-01-01T00:00:00+14:00", "to": "1969-12-31T00:00:00Z"}, "to"),
        ({"from": "2026-11-24", "to": "2026-11-24"}, "to"),
        ({"from": "2026-11-24"}, "to"),
        ({"to": "2026-11-24"}, "from"),
        ({"from": "not a time", "to": "2026-11-24"}, "query.from"),
    ]:
        assert _problem_field(await client.get("/v1/kpis", params=params)) == field, params
    old = await client.get("/v1/kpis/compare", params={"from": "1970-01-01", "to": "2026-01-01"})
    assert _problem_field(old) == "from"
    assert "before 1970-01-01" in old.json()["detail"]


async def test_compared_periods_adjoin_and_count_each_event_once(
    client: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Near the boundary 7 days back, where the previous period used to run on to the full
    # hour and overlap the current one.
    boundary = datetime.now(UTC) - timedelta(days=7)
    events = [
        enriched(f"edge{i}", occurred_at=boundary + timedelta(minutes=m), nps=10)
        for i, m in enumerate((-1, 1, 2, 5, 20, 40))
    ]
    await feed(_processor(db_sessions), events)
    for window in ("1h", "24h", "7d", "28d", "90d"):
        body = (await client.get("/v1/kpis/compare", params={"window": window})).json()
        a, b = body["a"], body["b"]
        assert _at(a["to"]) == _at(b["from"]), window
        assert _at(a["to"]) - _at(a["from"]) == _at(b["to"]) - _at(b["from"]) or window in (
            "28d",
            "90d",  # whole local days; a daylight-saving change may lie in one of them
        )
        assert _at(b["to"]) >= datetime.now(UTC) - timedelta(minutes=1)
        if window == "7d":
            (g,) = body["groups"]
            assert g["a"]["responses"] + g["b"]["responses"] == len(events)


async def test_a_future_time_series_lists_empty_points(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/kpis/timeseries",
        params={
            "metric": "nps",
            "interval": "day",
            "from": "2030-01-01T00:00:00Z",
            "to": "2030-02-01T00:00:00Z",
        },
    )
    assert response.status_code == 200, response.text
    points = response.json()["series"][0]["points"]
    # 1 Jan 00:00 UTC is 01:00 in Berlin: 31 local days and the first hour of 1 February.
    assert len(points) == 32
    assert all(p["n"] == 0 and p["value"] is None for p in points)
    local = await client.get(
        "/v1/kpis/timeseries", params={"from": "2030-01-01", "to": "2030-02-01"}
    )
    assert len(local.json()["series"][0]["points"]) == 31
    ahead = await client.get("/v1/kpis/timeseries", params={"from": "2030-01-01"})
    assert _problem_field(ahead) == "from"
    assert "future" in ahead.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/kpis", [("chanel", "web")], "chanel"),
        ("/v1/kpis", [("channel", "web"), ("channel", "app")], "channel"),
        ("/v1/kpis", [("window", "7d"), ("from", "2026-11-01"), ("to", "2026-11-02")], "window"),
        ("/v1/kpis", [("touchpoint_level", "1")], "touchpoint_level"),
        ("/v1/kpis", [("metric", "nps")], "metric"),
        ("/v1/kpis/timeseries", [("window", "7d")], "window"),
        ("/v1/kpis/timeseries", [("dimension", "channel")], "dimension"),
        ("/v1/kpis/compare", [("a", "web"), ("b", "app")], "dimension"),
        ("/v1/kpis/compare", [("dimension", "channel"), ("a", "web")], "b"),
        ("/v1/kpis/compare", [("interval", "day")], "interval"),
        ("/v1/kpis/compare", [("window", "7d"), ("to", "2026-11-02")], "window"),
        # Values of the contract's closed sets: a typo is not an empty group.
        ("/v1/kpis", [("channel", "fax")], "channel"),
        ("/v1/kpis", [("channel", "web,fax")], "channel"),
        ("/v1/kpis", [("journey_stage", "fulfilment")], "journey_stage"),
        ("/v1/kpis/timeseries", [("channel", "Web")], "channel"),
        ("/v1/kpis/compare", [("dimension", "channel"), ("a", "web"), ("b", "fax")], "b"),
    ],
)
async def test_parameters_are_never_ignored(
    client: httpx.AsyncClient, path: str, params: list[tuple[str, str]], field: str
) -> None:
    assert _problem_field(await client.get(path, params=params)) == field
    # The key is checked first.
    anonymous = await client.get(path, params=params, headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_every_documented_parameter_is_accepted(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/v1/kpis", "/v1/kpis/timeseries", "/v1/kpis/compare"):
        names = [p["name"] for p in paths[path]["get"]["parameters"] if p["in"] == "query"]
        assert "from" in names
        for name in names:
            response = await client.get(path, params={name: "x"})
            if response.status_code == 422:
                assert "unknown query parameter" not in response.text, (path, name)

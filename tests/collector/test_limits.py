"""Rate limits, the in-flight bound and CORS for publishable browser keys."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from cxloop_collector.settings import CollectorSettings
from cxruntime.embedded import EmbeddedKafka
from tests.collector.helpers import KeyMaker, collector_settings, start_collector

pytestmark = pytest.mark.integration

EVENT = {"channel": "web", "scores": {"nps": 8}}


async def test_rate_limit_answers_429_with_ratelimit_headers(
    kafka: EmbeddedKafka, database_url: str, tmp_path: Path, make_key: KeyMaker
) -> None:
    settings = collector_settings(
        kafka, database_url, tmp_path, collector_rate_limit_per_s=1, collector_rate_limit_burst=3
    )
    key = await make_key()
    other = await make_key(name="other")
    async for collector in start_collector(settings):
        answers = [
            await collector.client.post("/v1/feedback", json=EVENT, headers={"X-API-Key": key})
            for _ in range(4)
        ]
        assert [answer.status_code for answer in answers] == [202, 202, 202, 429]
        # The first answers leave the fields out; once half the bucket is used they come.
        assert "RateLimit" not in answers[0].headers
        assert answers[2].headers["RateLimit-Policy"] == '"api-key";q=3;w=3'
        assert answers[2].headers["RateLimit"] == '"api-key";r=0;t=3'
        response = answers[3]
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["RateLimit-Policy"] == '"api-key";q=3;w=3'
        assert response.headers["RateLimit"] == '"api-key";r=0;t=1'
        assert response.headers["Retry-After"] == "1"
        # Limits are per key.
        response = await collector.client.post(
            "/v1/feedback", json=EVENT, headers={"X-API-Key": other}
        )
        assert response.status_code == 202
        # 2 of 3 left: more than half the bucket, so the accepted answer leaves the fields out.
        assert "RateLimit" not in response.headers
        metrics = await collector.client.get("/metrics")
        assert "cx_collector_rate_limited_total 1.0" in metrics.text


async def test_ratelimit_fields_on_every_answer_when_configured(
    kafka: EmbeddedKafka,
    database_url: str,
    tmp_path: Path,
    make_key: KeyMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CX_COLLECTOR_RATE_LIMIT_HEADERS", "always")
    settings = collector_settings(kafka, database_url, tmp_path, collector_rate_limit_per_s=10)
    assert settings.collector_rate_limit_headers == "always"
    key = await make_key()
    async for collector in start_collector(settings):
        response = await collector.client.post(
            "/v1/feedback", json=EVENT, headers={"X-API-Key": key}
        )
        assert response.status_code == 202
        assert response.headers["RateLimit-Policy"] == '"api-key";q=20;w=2'
        assert response.headers["RateLimit"] == '"api-key";r=19;t=1'


def test_ratelimit_headers_setting_refuses_unknown_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CX_COLLECTOR_RATE_LIMIT_HEADERS", "sometimes")
    with pytest.raises(ValidationError, match="collector_rate_limit_headers"):
        CollectorSettings()


async def test_in_flight_bound_answers_429_rather_than_queueing(
    kafka: EmbeddedKafka, database_url: str, tmp_path: Path, make_key: KeyMaker
) -> None:
    settings = collector_settings(kafka, database_url, tmp_path, collector_max_in_flight=2)
    key = await make_key()
    async for collector in start_collector(settings):
        client = collector.client
        headers = {"X-API-Key": key}
        warm = await client.post("/v1/feedback", json=EVENT, headers=headers)
        assert warm.status_code == 202
        kafka.freeze()
        try:
            waiting = [
                asyncio.create_task(client.post("/v1/feedback", json=EVENT, headers=headers))
                for _ in range(2)
            ]
            deadline = time.monotonic() + 1.5
            while collector.gate.publisher.in_flight < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            assert collector.gate.publisher.in_flight == 2
            started = time.monotonic()
            refused = await client.post("/v1/feedback", json=EVENT, headers=headers)
            assert time.monotonic() - started < 1.0
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "1"
            assert "acknowledgement" in refused.json()["detail"]
            metrics = (await client.get("/metrics")).text
            assert "cx_collector_in_flight_events 2.0" in metrics
            assert [r.status_code for r in await asyncio.gather(*waiting)] == [503, 503]
        finally:
            kafka.thaw()


async def test_publishable_key_cors(
    kafka: EmbeddedKafka, database_url: str, tmp_path: Path, make_key: KeyMaker
) -> None:
    shop = "https://shop.example"
    key = await make_key(name="widget", channels=("web",), origins=(shop,), publishable=True)
    async for collector in start_collector(collector_settings(kafka, database_url, tmp_path)):
        client = collector.client
        preflight = await client.options(
            "/v1/feedback",
            headers={
                "Origin": shop,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-api-key",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == shop
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "x-api-key" in preflight.headers["access-control-allow-headers"]

        evil = await client.options(
            "/v1/feedback",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in evil.headers

        posted = await client.post(
            "/v1/feedback", json=EVENT, headers={"X-API-Key": key, "Origin": shop}
        )
        assert posted.status_code == 202
        assert posted.headers["access-control-allow-origin"] == shop
        assert "Origin" in posted.headers["vary"]
        assert "RateLimit" in posted.headers["access-control-expose-headers"].split(", ")

        wrong_origin = await client.post(
            "/v1/feedback", json=EVENT, headers={"X-API-Key": key, "Origin": "https://evil.example"}
        )
        assert wrong_origin.status_code == 403
        no_origin = await client.post("/v1/feedback", json=EVENT, headers={"X-API-Key": key})
        assert no_origin.status_code == 403
        other_channel = await client.post(
            "/v1/feedback",
            json={"channel": "app", "scores": {"nps": 1}},
            headers={"X-API-Key": key, "Origin": shop},
        )
        assert other_channel.status_code == 403
        assert other_channel.headers["access-control-allow-origin"] == shop


async def test_concurrent_lookups_of_one_key_share_one_query(
    kafka: EmbeddedKafka, database_url: str, tmp_path: Path, make_key: KeyMaker
) -> None:
    from cxloop_collector.keys import CoalescingAuthenticator
    from cxruntime import apikeys

    key = await make_key(name="herd")
    original = apikeys.authenticate
    async for collector in start_collector(collector_settings(kafka, database_url, tmp_path)):
        auth = collector.app.state.authenticator
        assert isinstance(auth, CoalescingAuthenticator)
        calls = 0

        async def counting(session: object, presented: str) -> object:
            nonlocal calls
            calls += 1
            return await original(session, presented)  # type: ignore[arg-type]

        apikeys.authenticate = counting  # type: ignore[assignment]
        try:
            found = await asyncio.gather(*(auth.resolve(key) for _ in range(20)))
        finally:
            apikeys.authenticate = original
        assert calls == 1
        assert {k.name for k in found if k is not None} == {"herd"}


@pytest.mark.parametrize(("value", "eager"), [(None, True), ("false", False)])
async def test_group_commit_is_on_by_default_and_can_be_turned_off(
    kafka: EmbeddedKafka,
    database_url: str,
    tmp_path: Path,
    make_key: KeyMaker,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
    eager: bool,
) -> None:
    if value is not None:
        monkeypatch.setenv("CX_COLLECTOR_GROUP_COMMIT", value)
    settings = collector_settings(kafka, database_url, tmp_path)
    key = await make_key()
    async for collector in start_collector(settings):
        framer = collector.app.state.gate.publisher.framer
        assert framer is not None
        assert framer.eager is eager
        # Either way an event is answered once Kafka holds it.
        response = await collector.client.post(
            "/v1/feedback", json=EVENT, headers={"X-API-Key": key}
        )
        assert response.status_code == 202

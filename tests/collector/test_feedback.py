"""POST /v1/feedback and /v1/feedback/batch against the real broker and database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from cxschema import TYPE_SUBMITTED, decode_received, feedback_uid, header_value
from tests.collector.helpers import Collector, KeyMaker, read_topic

pytestmark = pytest.mark.integration

DETRACTOR = {
    "id": "web-4711-1",
    "occurred_at": "2026-11-23T10:15:00+01:00",
    "channel": "web",
    "customer": {"id": "crm-4711", "segment": "premium", "region": "DE-BY"},
    "scores": {"nps": 3, "csat": 2},
    "comment": "Die Lieferung kam drei Tage zu spät.",
    "language": "de",
    "touchpoint": "delivery",
    "context": {"url": "https://shop.example/checkout", "order_id": "A-1001"},
}


async def test_accepts_an_event_only_once_kafka_holds_it(
    collector: Collector, make_key: KeyMaker
) -> None:
    key = await make_key()
    response = await collector.client.post(
        "/v1/feedback", json=DETRACTOR, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"id": "web-4711-1", "status": "accepted"}
    assert "RateLimit" not in response.headers  # far from the key's limit

    again = await collector.client.post("/v1/feedback", json=DETRACTOR, headers={"X-API-Key": key})
    assert again.status_code == 200
    assert again.json() == {"id": "web-4711-1", "status": "duplicate"}

    records = await read_topic(collector.settings.kafka_bootstrap(), 1)
    assert len(records) == 1
    record_key, value, headers = records[0]
    event = decode_received(value)
    assert record_key == b"crm-4711"
    assert event.source == "/cxloop/keys/web-shop"
    assert event.comment == "Die Lieferung kam drei Tage zu spät."
    assert event.occurred_at.isoformat() == "2026-11-23T10:15:00+01:00"
    assert header_value(headers, "ce_type") == TYPE_SUBMITTED
    assert header_value(headers, "ce_id") == "web-4711-1"
    assert header_value(headers, "ce_source") == "/cxloop/keys/web-shop"
    assert header_value(headers, "ce_specversion") == "1.0"
    assert header_value(headers, "content-type") == "application/json"


async def test_generates_id_and_time_when_absent(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key()
    response = await collector.client.post(
        "/v1/feedback",
        json={"channel": "app", "scores": {"ces": 6}},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 202
    event_id = response.json()["id"]
    (_, value, _), *_ = await read_topic(collector.settings.kafka_bootstrap(), 1)
    event = decode_received(value)
    assert event.id == event_id
    assert len(event_id) == 36
    assert event.occurred_at == event.received_at
    assert event.customer is None


async def test_invalid_events_name_each_failing_field(
    collector: Collector, make_key: KeyMaker
) -> None:
    key = await make_key()
    headers = {"X-API-Key": key}
    bad = {**DETRACTOR, "scores": {"nps": 11, "csat": 0, "ces": 8}, "colour": "red"}
    response = await collector.client.post("/v1/feedback", json=bad, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"scores.nps", "scores.csat", "scores.ces", "colour"}

    empty = await collector.client.post(
        "/v1/feedback", json={"channel": "web", "comment": "  "}, headers=headers
    )
    assert empty.status_code == 422
    assert "score" in empty.json()["errors"][0]["message"]

    broken = await collector.client.post(
        "/v1/feedback",
        content=b'{"channel": "web", "scores": ',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.headers["content-type"] == "application/problem+json"


async def test_size_limits(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key()
    headers = {"X-API-Key": key}
    post = collector.client.post

    # SPEC: a comment at most 5,000 characters; too large is 413, naming the field.
    long_comment = {"channel": "web", "comment": "x" * 5001}
    response = await post("/v1/feedback", json=long_comment, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert (error["field"], error["type"]) == ("comment", "too_large")
    # In a batch the item is rejected, and its error says it is too large.
    response = await post(
        "/v1/feedback/batch",
        json={"events": [long_comment, {"channel": "web", "scores": {"nps": 9}}]},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    (rejected,) = response.json()["rejected"]
    assert rejected["errors"][0]["type"] == "too_large"
    assert rejected["errors"][0]["message"].startswith("too large")

    # The 32 KiB are the event's compact UTF-8 JSON on both paths, however it was written:
    # 5,000 emoji escaped by json.dumps are a 60 KB body and a 20 KB event.
    emoji = json.dumps({"channel": "web", "comment": "\U0001f600" * 5000})
    assert len(emoji) > 32 * 1024
    json_headers = {**headers, "Content-Type": "application/json"}
    single = await post("/v1/feedback", content=emoji, headers=json_headers)
    assert single.status_code == 202, single.text
    batch = await post(
        "/v1/feedback/batch", content=f'{{"events":[{emoji}]}}', headers=json_headers
    )
    assert batch.json()["accepted"] == 1

    wide = "\U0001f600"
    huge = {
        "channel": "web",
        "comment": wide * 5000,
        "context": {"url": wide * 2000, "subject": wide * 1000, "order_id": wide * 500},
    }
    too_large = await post("/v1/feedback", json=huge, headers=headers)
    assert too_large.status_code == 413
    assert too_large.json()["errors"][0]["field"] == "(event)"
    in_batch = await post("/v1/feedback/batch", json={"events": [huge]}, headers=headers)
    assert in_batch.json()["rejected"][0]["errors"][0]["field"] == "(event)"
    body = await post("/v1/feedback", content=b" " * (129 * 1024), headers=json_headers)
    assert body.status_code == 413
    assert body.json()["errors"][0]["type"] == "too_large"

    batch = {"events": [{"channel": "web", "comment": "y" * 4000}] * 300}
    too_large_batch = await post("/v1/feedback/batch", json=batch, headers=headers)
    assert too_large_batch.status_code == 413

    # Too many items is too large as well (as on the contact-centre endpoint).
    too_many = {"events": [{"channel": "web", "scores": {"nps": 9}}] * 501}
    response = await post("/v1/feedback/batch", json=too_many, headers=headers)
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "events"


async def test_refuses_nul_and_times_from_the_future(
    collector: Collector, make_key: KeyMaker
) -> None:
    key = await make_key()
    headers = {"X-API-Key": key}
    post = collector.client.post
    ahead = (datetime.now(UTC) + timedelta(days=1, minutes=5)).isoformat()
    soon = (datetime.now(UTC) + timedelta(hours=23)).isoformat()
    bad = [
        ({"channel": "web", "comment": "zu sp\x00t"}, "comment", "U+0000"),
        (
            {"channel": "web", "customer": {"id": "c\x00"}, "scores": {"nps": 1}},
            "customer.id",
            "U+0000",
        ),
        ({"channel": "web", "scores": {"nps": 1}, "occurred_at": ahead}, "occurred_at", "1 day"),
        (
            {"channel": "web", "scores": {"nps": 1}, "occurred_at": "9999-12-31T23:59:59-12:00"},
            "occurred_at",
            "between 1970 and 2099",
        ),
    ]
    for event, field, wording in bad:
        response = await post("/v1/feedback", json=event, headers=headers)
        assert response.status_code == 422, (event, response.text)
        (error,) = response.json()["errors"]
        assert error["field"] == field
        assert wording in error["message"]
    good = {"id": "soon-1", "channel": "web", "scores": {"nps": 1}, "occurred_at": soon}
    response = await post(
        "/v1/feedback/batch",
        json={"events": [event for event, _, _ in bad] + [good]},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [item["errors"][0]["field"] for item in body["rejected"]] == [
        field for _, field, _ in bad
    ]
    # What was accepted is on the topic, and nothing else.
    records = await read_topic(collector.settings.kafka_bootstrap(), 1)
    assert [decode_received(value).id for _, value, _ in records] == ["soon-1"]


async def test_batch_answers_per_item(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key(name="app-batch", channels=("web", "app"))
    events = [
        {"id": f"b-{i}", "channel": "app", "scores": {"nps": i % 11}, "customer": {"id": f"c{i}"}}
        for i in range(20)
    ]
    events[3] = {"id": "b-3", "channel": "app", "scores": {"nps": 12}}
    events[7] = {"id": "b-7", "channel": "email", "comment": "wrong channel for this key"}
    events[9] = "not an object"
    events[11] = dict(events[10])
    response = await collector.client.post(
        "/v1/feedback/batch", json={"events": events}, headers={"X-API-Key": key}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 16
    assert body["duplicates"] == 1
    rejected = {item["index"]: item["errors"] for item in body["rejected"]}
    assert set(rejected) == {3, 7, 9}
    assert rejected[3][0]["field"] == "scores.nps"
    assert rejected[7][0]["field"] == "channel"
    assert body["ids"][0] == "b-0"
    assert body["ids"][3] is None

    again = await collector.client.post(
        "/v1/feedback/batch", json={"events": events[:3]}, headers={"X-API-Key": key}
    )
    assert again.json()["duplicates"] == 3

    records = await read_topic(collector.settings.kafka_bootstrap(), 16)
    ids = sorted(decode_received(value).id for _, value, _ in records)
    assert len(ids) == 16
    assert len(set(ids)) == 16
    uids = {feedback_uid("/cxloop/keys/app-batch", event_id) for event_id in ids}
    assert len(uids) == 16


async def test_auth(collector: Collector, make_key: KeyMaker) -> None:
    missing = await collector.client.post("/v1/feedback", json=DETRACTOR)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await collector.client.post(
        "/v1/feedback", json=DETRACTOR, headers={"X-API-Key": "cxk_nope_" + "x" * 30}
    )
    assert wrong.status_code == 401

    reader = await make_key(name="reader", scopes=("read",))
    response = await collector.client.post(
        "/v1/feedback", json=DETRACTOR, headers={"X-API-Key": reader}
    )
    assert response.status_code == 403

    app_only = await make_key(name="app-only", channels=("app",))
    response = await collector.client.post(
        "/v1/feedback", json=DETRACTOR, headers={"X-API-Key": app_only}
    )
    assert response.status_code == 403
    assert "channel" in response.json()["detail"]


async def test_revoked_key_stops_working(
    collector: Collector, make_key: KeyMaker, db_sessions: object
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from cxruntime import apikeys

    assert isinstance(db_sessions, async_sessionmaker)
    sessions: async_sessionmaker[AsyncSession] = db_sessions
    key = await make_key(name="to-revoke")
    event = {"channel": "web", "scores": {"nps": 9}}
    ok = await collector.client.post("/v1/feedback", json=event, headers={"X-API-Key": key})
    assert ok.status_code == 202
    async with sessions() as session, session.begin():
        assert await apikeys.revoke_key(session, name="to-revoke")
    import asyncio

    await asyncio.sleep(collector.settings.collector_auth_cache_s + 0.1)
    revoked = await collector.client.post("/v1/feedback", json=event, headers={"X-API-Key": key})
    assert revoked.status_code == 401


async def test_ops_endpoints(collector: Collector) -> None:
    assert (await collector.client.get("/healthz")).json() == {"status": "ok"}
    ready = await collector.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    metrics = await collector.client.get("/metrics")
    assert "cx_collector_events_total" in metrics.text
    document = (await collector.client.get("/openapi.json")).json()
    assert "/v1/feedback" in document["paths"]
    schemas = document["components"]["schemas"]
    assert {"FeedbackSubmission", "FeedbackCloudEvent", "ContactCentreRecord"} <= set(schemas)
    cloudevents = document["paths"]["/v1/cloudevents"]["post"]
    assert set(cloudevents["requestBody"]["content"]) == {
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/json",
    }
    assert "ce-id" in {parameter["name"] for parameter in cloudevents["parameters"]}
    assert orjson.dumps(document)

"""POST /v1/cloudevents with the official CloudEvents SDK as the peer client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1.conversion import to_structured
from cloudevents.v1.http import CloudEvent as V1CloudEvent

from cxschema import TYPE_SUBMITTED, decode_received, header_value
from tests.collector.helpers import Collector, KeyMaker, read_topic

pytestmark = pytest.mark.integration

SOURCE = "/shops/Zürich Süd/widget"


def feedback_event(event_id: str, data: dict[str, Any], **attrs: Any) -> CloudEvent:
    attributes = {
        "type": TYPE_SUBMITTED,
        "source": SOURCE,
        "id": event_id,
        "time": datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        **attrs,
    }
    return CloudEvent(attributes=attributes, data=data)


async def test_binary_mode_with_percent_encoded_headers(
    collector: Collector, make_key: KeyMaker
) -> None:
    key = await make_key()
    message = ce_http.to_binary_event(
        feedback_event("ce-bin-1", {"channel": "web", "scores": {"nps": 2}, "comment": "Zu teuer"})
    )
    assert "%C3%BC" in message.headers["ce-source"]
    headers = {**message.headers, "Content-Type": "application/json", "X-API-Key": key}
    response = await collector.client.post("/v1/cloudevents", content=message.body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"id": "ce-bin-1", "status": "accepted"}

    again = await collector.client.post("/v1/cloudevents", content=message.body, headers=headers)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"

    (_, value, record_headers), *rest = await read_topic(collector.settings.kafka_bootstrap(), 1)
    assert rest == []
    event = decode_received(value)
    assert event.source == SOURCE
    assert event.id == "ce-bin-1"
    assert event.occurred_at == datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    assert header_value(record_headers, "ce_source") == SOURCE
    assert header_value(record_headers, "ce_id") == "ce-bin-1"


async def test_structured_mode_with_the_v1_sdk(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key()
    event = V1CloudEvent(
        {"type": TYPE_SUBMITTED, "source": "/app/ios", "id": "ce-str-1"},
        {
            "channel": "app",
            "occurred_at": "2026-11-22T18:00:00+01:00",
            "customer": {"id": "crm-9"},
            "scores": {"csat": 5},
            "context": {"app_screen": "checkout"},
        },
    )
    headers, body = to_structured(event)
    assert headers["content-type"] == "application/cloudevents+json"
    response = await collector.client.post(
        "/v1/cloudevents", content=body, headers={**headers, "Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 202, response.text
    (record_key, value, _), *_ = await read_topic(collector.settings.kafka_bootstrap(), 1)
    received = decode_received(value)
    assert record_key == b"crm-9"
    assert received.source == "/app/ios"
    assert received.context.app_screen == "checkout"
    assert received.occurred_at.isoformat() == "2026-11-22T18:00:00+01:00"


async def test_batched_mode_answers_per_item(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key()
    fmt = JSONFormat()
    good = [
        orjson.loads(
            fmt.write(feedback_event(f"ce-b-{i}", {"channel": "web", "scores": {"nps": i}}))
        )
        for i in range(5)
    ]
    wrong_type = orjson.loads(
        fmt.write(feedback_event("ce-b-x", {"channel": "web", "scores": {"nps": 1}}, type="x.y"))
    )
    bad_data = orjson.loads(
        fmt.write(feedback_event("ce-b-y", {"channel": "web", "scores": {"csat": 9}}))
    )
    body = orjson.dumps([*good, wrong_type, bad_data, good[0]])
    response = await collector.client.post(
        "/v1/cloudevents",
        content=body,
        headers={"Content-Type": "application/cloudevents-batch+json", "X-API-Key": key},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 5
    assert result["duplicates"] == 1
    rejected = {item["index"]: item["errors"] for item in result["rejected"]}
    assert [e["field"] for e in rejected[5]] == ["type"]
    assert [e["field"] for e in rejected[6]] == ["data.scores.csat"]
    records = await read_topic(collector.settings.kafka_bootstrap(), 5)
    assert sorted(decode_received(v).id for _, v, _ in records) == [f"ce-b-{i}" for i in range(5)]


async def test_rejects_what_is_not_a_feedback_cloudevent(
    collector: Collector, make_key: KeyMaker
) -> None:
    key = await make_key()
    plain = await collector.client.post(
        "/v1/cloudevents", json={"channel": "web"}, headers={"X-API-Key": key}
    )
    assert plain.status_code == 415
    message = ce_http.to_binary_event(
        feedback_event("x" * 101, {"channel": "web", "scores": {"nps": 5}}, type="other.type")
    )
    response = await collector.client.post(
        "/v1/cloudevents",
        content=message.body,
        headers={**message.headers, "X-API-Key": key},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"type", "id"}


def binary_headers(key: str, **attrs: str) -> dict[str, str]:
    """Binary-mode headers with the given (already encoded) attribute values."""
    values = {"specversion": "1.0", "type": TYPE_SUBMITTED, "source": "/bin", **attrs}
    return {
        **{f"ce-{name}": value for name, value in values.items()},
        "Content-Type": "application/json",
        "X-API-Key": key,
    }


DATA = b'{"channel":"web","scores":{"nps":4}}'


async def test_binary_attributes_must_decode(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key()
    post = collector.client.post

    # Lenient decoding made all three "bin-7\ufffd": one accepted, two lost as duplicates.
    for bad in ("bin-7%FF", "bin-7%FE", "bin-7%C0"):
        response = await post("/v1/cloudevents", content=DATA, headers=binary_headers(key, id=bad))
        assert response.status_code == 422, response.text
        (error,) = response.json()["errors"]
        assert error["field"] == "id"
        assert "UTF-8" in error["message"]
    response = await post(
        "/v1/cloudevents", content=DATA, headers=binary_headers(key, id="x", source="/s%ZZ%")
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "source"
    assert "'%ZZ'" in error["message"]
    response = await post("/v1/cloudevents", content=DATA, headers=binary_headers(key, id="a%00"))
    assert response.status_code == 422
    assert "U+0000" in response.json()["errors"][0]["message"]

    # What is missing is named, not answered with 415.
    headers = binary_headers(key, id="no-version")
    del headers["ce-specversion"]
    response = await post("/v1/cloudevents", content=DATA, headers=headers)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["specversion"]

    # A body that is not JSON is 400, as on /v1/feedback and in structured mode.
    response = await post("/v1/cloudevents", content=b"{", headers=binary_headers(key, id="b"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "json_invalid"

    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = await post(
        "/v1/cloudevents", content=DATA, headers=binary_headers(key, id="t", time=ahead)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "time"

    # Correct encodings still work: UTF-8 percent-encoded, and a plain id.
    for event_id in ("bin-%C3%BC", "bin-7"):
        response = await post(
            "/v1/cloudevents", content=DATA, headers=binary_headers(key, id=event_id)
        )
        assert response.status_code == 202, response.text
    assert response.json()["id"] == "bin-7"
    records = await read_topic(collector.settings.kafka_bootstrap(), 2)
    assert sorted(decode_received(value).id for _, value, _ in records) == ["bin-7", "bin-ü"]


async def test_structured_and_batched_refuse_nul_and_future_times(
    collector: Collector, make_key: KeyMaker
) -> None:
    key = await make_key()
    post = collector.client.post
    structured = {"Content-Type": "application/cloudevents+json", "X-API-Key": key}
    batched = {"Content-Type": "application/cloudevents-batch+json", "X-API-Key": key}

    def envelope(event_id: str, data: dict[str, Any], **attrs: Any) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "type": TYPE_SUBMITTED,
            "source": "/str",
            "id": event_id,
            "data": data,
            **attrs,
        }

    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    nul = envelope("n\x00", {"channel": "web", "scores": {"nps": 1}}, source="/s\x00")
    future = envelope("f", {"channel": "web", "scores": {"nps": 1}, "occurred_at": ahead})
    long = envelope("l", {"channel": "web", "comment": "x" * 5001})
    good = envelope("g", {"channel": "web", "scores": {"nps": 9}})

    response = await post("/v1/cloudevents", content=orjson.dumps(nul), headers=structured)
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {"id", "source"}
    response = await post("/v1/cloudevents", content=orjson.dumps(future), headers=structured)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "data.occurred_at"
    response = await post("/v1/cloudevents", content=orjson.dumps(long), headers=structured)
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "data.comment"
    response = await post("/v1/cloudevents", content=b"{", headers=structured)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "(body)"

    response = await post(
        "/v1/cloudevents", content=orjson.dumps([nul, future, long, good]), headers=batched
    )
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 1
    assert [item["index"] for item in result["rejected"]] == [0, 1, 2]
    assert result["rejected"][2]["errors"][0]["type"] == "too_large"
    response = await post("/v1/cloudevents", content=orjson.dumps([good] * 501), headers=batched)
    assert response.status_code == 413
    response = await post("/v1/cloudevents", content=b"[", headers=batched)
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "json_invalid"
    records = await read_topic(collector.settings.kafka_bootstrap(), 1)
    assert [decode_received(value).id for _, value, _ in records] == ["g"]

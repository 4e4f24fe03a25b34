"""POST /v1/cloudevents with the official CloudEvents SDK as the peer client."""

from __future__ import annotations

from datetime import UTC, datetime
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

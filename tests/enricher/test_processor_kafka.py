"""The enricher's processor on the consumer runner against a real broker."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from cxloop_enricher.main import runner_config
from cxloop_enricher.processor import EnrichProcessor
from cxloop_enricher.settings import EnricherSettings
from cxruntime.consumer import ConsumerRunner
from cxruntime.embedded import EmbeddedKafka
from cxruntime.kafka import make_producer
from cxschema import ENRICHED, INVALID, TYPE_ENRICHED, decode_enriched, header_value
from tests.enricher.helpers import (
    TopicReader,
    default_enricher,
    produce_raw,
    raw_event,
    raw_record,
)

pytestmark = pytest.mark.integration


async def _run(kafka: EmbeddedKafka, body: object) -> None:
    settings = EnricherSettings(kafka_bootstrap_servers=kafka.bootstrap)
    config = runner_config(settings, kafka.bootstrap)
    producer = make_producer(kafka.bootstrap, client_id="test-enricher")
    await producer.start()
    runner = ConsumerRunner(config, EnrichProcessor(default_enricher()), producer)
    task = asyncio.create_task(runner.run())
    try:
        await body  # type: ignore[misc]
    finally:
        runner.stop()
        await asyncio.wait_for(task, timeout=20)
        await producer.stop()


async def test_raw_events_are_enriched_with_same_key_and_headers(kafka: EmbeddedKafka) -> None:
    events = [
        raw_event(comment="Die Lieferung kam drei Tage zu spät. Mail: max@example.de"),
        raw_event(comment=None, scores={"nps": 10}, touchpoint="checkout", language="en"),
        raw_event(comment="The app keeps crashing", channel="app", customer=None),
    ]
    records = [raw_record(e) for e in events]
    await produce_raw(kafka.bootstrap, records)

    async def check() -> None:
        async with TopicReader(kafka.bootstrap, ENRICHED) as reader:
            assert await reader.until(lambda r: len(r) >= 3, timeout_s=30)
        by_id = {header_value(r.headers, "ce_id"): r for r in reader.records}
        assert len(by_id) == 3
        for event, (key, _, headers) in zip(events, records, strict=True):
            out = by_id[event.id]
            assert out.key == key
            assert header_value(out.headers, "ce_type") == TYPE_ENRICHED
            assert header_value(out.headers, "ce_source") == event.source
            assert header_value(out.headers, "traceparent") == header_value(headers, "traceparent")
            enriched = decode_enriched(out.value or b"")
            assert enriched.received_at == event.received_at
            assert enriched.enriched_at is not None
        first = decode_enriched(by_id[events[0].id].value or b"")
        assert (first.touchpoint, first.journey_stage, first.owner_team) == (
            "delivery.delay",
            "delivery",
            "logistics",
        )
        assert first.comment == "Die Lieferung kam drei Tage zu spät. Mail: [EMAIL]"
        assert first.redactions == {"email": 1}
        assert first.language == "de"
        assert first.sentiment.label == "negative"
        second = decode_enriched(by_id[events[1].id].value or b"")
        assert (second.touchpoint, second.sentiment.label, second.sentiment.score) == (
            "online.checkout",
            "neutral",
            0.0,
        )
        third = decode_enriched(by_id[events[2].id].value or b"")
        assert (third.touchpoint, third.language) == ("app.performance", "en")

    await _run(kafka, check())


async def test_undecodable_records_are_dead_lettered_and_the_consumer_goes_on(
    kafka: EmbeddedKafka,
) -> None:
    good_before, good_after = raw_event(), raw_event()
    bad_schema = orjson.dumps({"id": "x", "channel": "fax"})
    await produce_raw(
        kafka.bootstrap,
        [
            raw_record(good_before),
            (b"k1", b"{not json", [("ce_id", b"broken-1")]),
            (b"k2", bad_schema, [("ce_id", b"broken-2")]),
            raw_record(good_after),
        ],
    )

    async def check() -> None:
        async with TopicReader(kafka.bootstrap, INVALID) as dead:
            assert await dead.until(lambda r: len(r) >= 2, timeout_s=30)
        reasons = {header_value(r.headers, "ce_id"): r for r in dead.records}
        broken_json = reasons["broken-1"]
        assert broken_json.value == b"{not json"
        assert broken_json.key == b"k1"
        assert (header_value(broken_json.headers, "cx_error_reason") or "").startswith(
            "invalid JSON"
        )
        assert header_value(broken_json.headers, "cx_error_stage") == "enricher"
        schema = header_value(reasons["broken-2"].headers, "cx_error_reason") or ""
        assert "channel" in schema
        assert "occurred_at" in schema
        async with TopicReader(kafka.bootstrap, ENRICHED) as enriched:
            assert await enriched.until(lambda r: len(r) >= 2, timeout_s=30)
        ids = {header_value(r.headers, "ce_id") for r in enriched.records}
        assert ids == {good_before.id, good_after.id}

    await _run(kafka, check())


async def test_two_enrichers_share_the_partitions(kafka: EmbeddedKafka) -> None:
    settings = EnricherSettings(kafka_bootstrap_servers=kafka.bootstrap)
    config = runner_config(settings, kafka.bootstrap)
    producer = make_producer(kafka.bootstrap, client_id="test-enricher")
    await producer.start()
    runners = [ConsumerRunner(config, EnrichProcessor(default_enricher()), producer) for _ in "ab"]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not all(r.assignment for r in runners):
            assert asyncio.get_running_loop().time() < deadline, "the group did not balance"
            await asyncio.sleep(0.1)
        first, second = (r.assignment for r in runners)
        assert not first & second
        assert len(first | second) == 3
        events = [raw_event() for _ in range(60)]
        await produce_raw(kafka.bootstrap, [raw_record(e) for e in events])
        async with TopicReader(kafka.bootstrap, ENRICHED) as reader:
            assert await reader.until(lambda r: len(r) >= 60, timeout_s=30)
        assert {header_value(r.headers, "ce_id") for r in reader.records} == {e.id for e in events}
    finally:
        for runner in runners:
            runner.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        await producer.stop()

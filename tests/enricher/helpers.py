"""Helpers of the enricher tests: raw events as the collector writes them, reading topics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cxloop_enricher.enrich import Enricher
from cxloop_enricher.language import detect_language
from cxloop_enricher.pii import Redactor
from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.taxonomy import load_taxonomy
from cxloop_enricher.touchpoints import TouchpointTagger
from cxruntime.consumer import Consumed
from cxschema import RAW, TYPE_SUBMITTED, FeedbackReceived, ce_headers, encode, record_key

SOURCE = "https://collector.test/v1/feedback"


def raw_event(**overrides: Any) -> FeedbackReceived:
    """A valid `FeedbackReceived`; fields overridden by keyword."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "occurred_at": now,
        "received_at": now,
        "source": SOURCE,
        "channel": "web",
        "customer": {"id": f"crm-{uuid.uuid4().hex[:8]}", "region": "DE-BY"},
        "scores": {"nps": 3},
        "comment": "Die Lieferung kam drei Tage zu spät.",
        **overrides,
    }
    return FeedbackReceived.model_validate(values)


def raw_record(event: FeedbackReceived) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the event's `cx.feedback.raw.v1` record."""
    headers = ce_headers(event, ce_type=TYPE_SUBMITTED)
    headers.append(("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    return record_key(event), encode(event), headers


def default_enricher() -> Enricher:
    """The enricher as `cxloop enricher` builds it from the packaged defaults."""
    taxonomy = load_taxonomy(None)
    return Enricher(
        tagger=TouchpointTagger(taxonomy),
        redactor=Redactor(taxonomy.pii_patterns),
        analyzer=SentimentAnalyzer.default(),
        detect_language=detect_language,
    )


async def produce_raw(
    bootstrap: str, records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
) -> None:
    """Write records to `cx.feedback.raw.v1` and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(RAW, value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class TopicReader:
    """Reads a topic from the beginning, without a group, for as long as a test needs."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.records: list[Consumed] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> None:
        """Read what is there now."""
        batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
        for messages in batches.values():
            self.records.extend(
                Consumed(
                    m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp
                )
                for m in messages
            )

    async def until(self, done: Callable[[list[Consumed]], bool], timeout_s: float) -> bool:
        """Poll until `done(records)` holds or the time is up; whether it holds."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() >= deadline:
                return False
            await self.poll()
        return True


def record_encoder_calls(monkeypatch: Any) -> list[list[str]]:
    """Make the sentence encoder write down each list of sentences it is given (the real
    encoder still answers); the list of those lists is returned."""
    from cxloop_enricher.sentiment import embedding

    real = embedding._encoder(embedding.USE_MULTILINGUAL)
    calls: list[list[str]] = []

    class Recording:
        def encode(self, batch: list[str]) -> Any:
            calls.append(list(batch))
            return real.encode(batch)

    monkeypatch.setattr(embedding, "_encoder", lambda name: Recording())
    return calls

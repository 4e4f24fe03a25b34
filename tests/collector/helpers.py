"""Helpers of the collector tests: settings, an in-process collector, reading the topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from cxloop_collector.gate import Gate
from cxloop_collector.main import create_app
from cxloop_collector.settings import CollectorSettings
from cxruntime.embedded import EmbeddedKafka
from cxschema import RAW

KeyMaker = Callable[..., Awaitable[str]]


@dataclass
class Collector:
    """A running collector app and a client talking to it."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: CollectorSettings

    @property
    def gate(self) -> Gate:
        gate = self.app.state.gate
        assert isinstance(gate, Gate)
        return gate


def collector_settings(
    kafka: EmbeddedKafka, database_url: str, data_dir: Path, **overrides: object
) -> CollectorSettings:
    """Settings pointing at the test's broker and database."""
    values: dict[str, object] = {
        "kafka_bootstrap_servers": kafka.bootstrap,
        "database_url": database_url,
        "data_dir": data_dir,
        "collector_auth_cache_s": 0.5,
        "collector_rating_secret": "test-rating-secret",
        **overrides,
    }
    return CollectorSettings.model_validate(values)


async def start_collector(settings: CollectorSettings) -> AsyncIterator[Collector]:
    """Run the app's lifespan, wait until its producer is connected, yield a client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        gate = app.state.gate
        assert isinstance(gate, Gate)
        deadline = time.monotonic() + 20
        while gate.publisher.producer is None:
            assert time.monotonic() < deadline, "the producer did not connect"
            await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://collector.test", timeout=10
        ) as client:
            yield Collector(app=app, client=client, settings=settings)


async def read_topic(
    bootstrap: str, expected: int, *, topic: str = RAW, timeout_s: float = 15.0
) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
    """Read the topic from the start until `expected` records arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for batch in batches.values():
                for message in batch:
                    assert message.value is not None
                    records.append((message.key, message.value, list(message.headers)))
        # Give stray extra records (a duplicate written twice) a moment to show up.
        if len(records) >= expected:
            batches = await consumer.getmany(timeout_ms=300)
            for batch in batches.values():
                for message in batch:
                    assert message.value is not None
                    records.append((message.key, message.value, list(message.headers)))
    finally:
        await consumer.stop()
    return records


def assert_within(written: Any, full: Any) -> None:
    """`written` is `full` with some object members left out, at any depth."""
    if isinstance(written, dict):
        assert isinstance(full, dict)
        for name, value in written.items():
            assert name in full, name
            assert_within(value, full[name])
    else:
        assert written == full

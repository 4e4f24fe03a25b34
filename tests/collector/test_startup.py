"""Starting while Kafka is down: not ready, 503 for events, ready and accepting once it is up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from cxloop_collector.main import create_app
from cxloop_collector.settings import CollectorSettings
from cxruntime.embedded import EmbeddedKafka, free_port
from cxruntime.kafka import ensure_topics
from tests.collector.helpers import KeyMaker

pytestmark = pytest.mark.integration


async def test_starts_without_kafka_and_connects_when_it_appears(
    database_url: str, tmp_path: Path, make_key: KeyMaker
) -> None:
    key = await make_key()
    port = free_port()
    settings = CollectorSettings.model_validate(
        {
            "kafka_bootstrap_servers": f"127.0.0.1:{port}",
            "database_url": database_url,
            "data_dir": tmp_path,
        }
    )
    app = create_app(settings)
    broker = EmbeddedKafka(port=port, log_path=tmp_path / "tansu.log")
    event = {"channel": "web", "scores": {"nps": 9}}
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://collector.test"
            ) as client,
        ):
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["kafka"] is False
            refused = await client.post("/v1/feedback", json=event, headers={"X-API-Key": key})
            assert refused.status_code == 503
            assert refused.headers["Retry-After"]

            broker.start()
            await ensure_topics(broker.bootstrap, partitions=3)
            deadline = time.monotonic() + 30
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "never became ready"
                await asyncio.sleep(0.2)
            accepted = await client.post("/v1/feedback", json=event, headers={"X-API-Key": key})
            assert accepted.status_code == 202, accepted.text
    finally:
        broker.stop()

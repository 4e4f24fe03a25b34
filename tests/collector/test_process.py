"""`cxloop collector` as its own process, as a container runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cxruntime.embedded import EmbeddedKafka, free_port
from cxschema import decode_received
from tests.collector.helpers import KeyMaker, read_topic

pytestmark = pytest.mark.integration


async def test_cxloop_collector_serves_and_stops_on_sigterm(
    kafka: EmbeddedKafka, database_url: str, tmp_path: Path, make_key: KeyMaker
) -> None:
    key = await make_key(name="proc")
    port = free_port()
    env = {
        **os.environ,
        "CX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "CX_DATABASE_URL": database_url,
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_COLLECTOR_PORT": str(port),
    }
    cxloop = Path(sys.executable).parent / "cxloop"
    log_path = tmp_path / "collector.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(cxloop), "collector", env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.returncode is None, log_path.read_text()
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the collector did not become ready"
                await asyncio.sleep(0.1)
            response = await client.post(
                "/v1/feedback",
                json={"id": "proc-1", "channel": "web", "scores": {"nps": 0}},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 202, response.text
            docs = await client.get("/docs")
            assert docs.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0, log_path.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    (_, value, _), *_ = await read_topic(kafka.bootstrap, 1)
    assert decode_received(value).id == "proc-1"
    assert (tmp_path / "data" / "collector-rating.secret").is_file()

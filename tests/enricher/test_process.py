"""`cxloop enricher` as a real process: its ops endpoints, and a SIGKILL mid-stream followed by a
restart loses no event."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cxruntime.consumer import Consumed
from cxruntime.embedded import EmbeddedKafka, free_port
from cxruntime.probes import wait_for_http
from cxschema import ENRICHED, decode_enriched, header_value
from tests.enricher.helpers import TopicReader, produce_raw, raw_event, raw_record

pytestmark = pytest.mark.integration

CXLOOP = [sys.executable, "-m", "cxruntime"]


@contextmanager
def enricher_process(
    kafka: EmbeddedKafka, tmp_path: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "CX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "CX_ENRICHER_PORT": str(port),
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_LOG_LEVEL": "INFO",
    }
    log = (tmp_path / f"enricher-{port}.log").open("ab")
    process = subprocess.Popen([*CXLOOP, "enricher"], env=env, stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    wait_for_http(f"http://127.0.0.1:{port}/readyz", process=process, interval_s=0.1)


def _uids(records: list[Consumed]) -> set[tuple[str | None, str | None]]:
    return {
        (header_value(r.headers, "ce_source"), header_value(r.headers, "ce_id")) for r in records
    }


def test_ops_endpoints_and_metrics(kafka: EmbeddedKafka, tmp_path: Path) -> None:
    port = free_port()
    with enricher_process(kafka, tmp_path, port) as process:
        wait_ready(port, process)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").json()["checks"] == {"kafka": True}
        assert "/readyz" in httpx.get(f"{base}/openapi.json").json()["paths"]
        event = raw_event(comment="Mail an max@example.de, die Lieferung kam zu spät")
        asyncio.run(produce_raw(kafka.bootstrap, [raw_record(event)]))

        async def read() -> list[Consumed]:
            async with TopicReader(kafka.bootstrap, ENRICHED) as reader:
                assert await reader.until(lambda r: len(r) >= 1, timeout_s=30)
            return reader.records

        enriched = decode_enriched(asyncio.run(read())[0].value or b"")
        assert enriched.comment == "Mail an [EMAIL], die Lieferung kam zu spät"
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline and "cx_enricher_redactions_total" not in text:
            text = httpx.get(f"{base}/metrics").text
            time.sleep(0.1)
        assert 'cx_enricher_redactions_total{kind="email"} 1.0' in text
        assert (
            'cx_enricher_events_total{language="de",sentiment="negative",touchpoint="delivery"} 1.0'
            in text
        )
        assert 'cx_enricher_touchpoints_total{touchpoint="delivery.delay",via="rule"} 1.0' in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_sigkill_mid_stream_then_restart_loses_nothing(
    kafka: EmbeddedKafka, tmp_path: Path
) -> None:
    total = 3000
    events = [
        raw_event(
            comment=f"Lieferung Nummer {i} kam zu spät" if i % 3 else None, scores={"nps": i % 11}
        )
        for i in range(total)
    ]
    records = [raw_record(e) for e in events]
    expected = {(e.source, e.id) for e in events}
    port = free_port()

    async def stream_and_kill(process: subprocess.Popen[bytes]) -> int:
        async with TopicReader(kafka.bootstrap, ENRICHED) as reader:
            # The second half is produced only after the kill, so the kill always comes
            # mid-stream, however fast the enricher catches up with the first half.
            half = total // 2
            producing = asyncio.create_task(_trickle(kafka.bootstrap, records[:half]))
            assert await reader.until(lambda r: len(r) >= total // 5, timeout_s=60)
            process.send_signal(signal.SIGKILL)
            await producing
            await _trickle(kafka.bootstrap, records[half:])
            await reader.poll()
            return len(_uids(reader.records))

    with enricher_process(kafka, tmp_path, port) as first:
        wait_ready(port, first)
        seen_at_kill = asyncio.run(stream_and_kill(first))
        first.wait(timeout=10)
    assert seen_at_kill < total, "the kill came after everything was enriched"

    async def read_all() -> list[Consumed]:
        async with TopicReader(kafka.bootstrap, ENRICHED) as reader:
            await reader.until(lambda r: _uids(r) >= expected, timeout_s=90)
        return reader.records

    with enricher_process(kafka, tmp_path, port) as second:
        wait_ready(port, second)
        out = asyncio.run(read_all())
    assert _uids(out) == expected
    assert all(decode_enriched(r.value or b"").touchpoint for r in out)


async def _trickle(
    bootstrap: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
) -> None:
    """Produce in slices so the enricher is mid-stream when it is killed."""
    for start in range(0, len(records), 100):
        await produce_raw(bootstrap, list(records[start : start + 100]))
        await asyncio.sleep(0.02)


def test_readyz_is_503_while_kafka_does_not_answer(kafka: EmbeddedKafka, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"

    def status_becomes(expected: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=5).status_code == expected:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    with enricher_process(kafka, tmp_path, port) as process:
        wait_ready(port, process)
        kafka.freeze()
        try:
            assert status_becomes(503, timeout_s=15)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        finally:
            kafka.thaw()
        assert status_becomes(200, timeout_s=30)

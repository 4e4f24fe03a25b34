"""Exactly once under SIGKILL: `cxloop metrics` is killed at random points while it consumes a
known stream (with duplicates and late events), restarted, and the KPI API must then show
exactly the counts and values of the distinct events."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxruntime import apikeys
from cxruntime.embedded import EmbeddedKafka, free_port
from cxschema import ENRICHED, FeedbackEnriched, record_key
from tests.metrics.factories import enriched, value

pytestmark = pytest.mark.integration

CXLOOP = str(Path(sys.executable).with_name("cxloop"))
CHANNELS = ("web", "app", "email", "contact_centre")


def _stream(
    now: datetime, rng: random.Random
) -> tuple[list[FeedbackEnriched], list[FeedbackEnriched]]:
    """Distinct events and the stream to send (distinct ones plus re-sent duplicates)."""
    distinct = []
    for i in range(1500):
        if i % 50 == 0:
            occurred = now - timedelta(days=3, minutes=i)  # late, within the lateness
        elif i % 125 == 1:
            occurred = now - timedelta(days=10, minutes=i)  # later than the lateness
        else:
            occurred = now - timedelta(minutes=rng.randrange(1, 60 * 48))
        commented = i % 3 == 0
        distinct.append(
            enriched(
                f"ev-{i}",
                occurred_at=occurred,
                channel=CHANNELS[i % 4],
                touchpoint=("delivery", "checkout", "support")[i % 3],
                region=("DE-BY", "DE-BE", "AT-9")[i % 3],
                segment=("premium", "basic")[i % 2],
                nps=rng.randrange(11) if i % 5 else None,
                csat=rng.randrange(1, 6) if i % 2 else None,
                ces=rng.randrange(1, 8) if i % 7 else None,
                comment="Paket kam zu spät" if commented else None,
                sentiment=("negative", -0.6) if commented and i % 2 else ("positive", 0.4),
            )
        )
    duplicates = [distinct[i] for i in range(0, 1500, 7)]
    stream = distinct[:750] + duplicates[:100] + distinct[750:] + duplicates[100:]
    return distinct, stream


async def _produce(bootstrap: str, events: list[FeedbackEnriched]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(ENRICHED, value(e), key=record_key(e)) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _progress(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        total = await s.scalar(text("SELECT coalesce(sum(next_offset), 0) FROM metrics_offsets"))
    return int(total or 0)


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [CXLOOP, "metrics"], env=env, stdout=handle, stderr=subprocess.STDOUT
        )


def _ratio(x: float, n: int) -> float | None:
    return x / n if n else None


def _expected(
    distinct: list[FeedbackEnriched], channel: str | None = None
) -> dict[str, float | None]:
    chosen = [e for e in distinct if channel is None or e.channel == channel]
    nps = [e.scores.nps for e in chosen if e.scores.nps is not None]
    csat = [e.scores.csat for e in chosen if e.scores.csat is not None]
    ces = [e.scores.ces for e in chosen if e.scores.ces is not None]
    commented = [e for e in chosen if e.comment]
    promoters = sum(1 for s in nps if s >= 9)
    detractors = sum(1 for s in nps if s <= 6)
    return {
        "responses": len(chosen),
        "nps_n": len(nps),
        "promoters": promoters,
        "detractors": detractors,
        "nps": _ratio(100 * (promoters - detractors), len(nps)),
        "csat_top2_pct": _ratio(100 * sum(1 for s in csat if s >= 4), len(csat)),
        "ces_mean": _ratio(sum(ces), len(ces)),
        "sentiment_n": len(commented),
        "negative_share": _ratio(
            sum(1 for e in commented if e.sentiment.label == "negative"), len(commented)
        ),
    }


async def test_sigkill_at_random_points_neither_loses_nor_double_counts(
    kafka: EmbeddedKafka,
    database_url: str,
    db_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    rng = random.Random(20261123)
    now = datetime.now(UTC)
    distinct, stream = _stream(now, rng)
    await _produce(kafka.bootstrap, stream)
    async with db_sessions() as s, s.begin():
        _, key = await apikeys.create_key(s, name="reader", scopes=["read"])

    port = free_port()
    env = {
        **os.environ,
        "CX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "CX_DATABASE_URL": database_url,
        "CX_METRICS_PORT": str(port),
        "CX_METRICS_MAX_BATCH": "25",
        # Small transactions (two batches merged at most), so that kills land mid-stream.
        "CX_METRICS_WRITE_BATCH": "50",
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_LOG_LEVEL": "WARNING",
        "CX_METRICS_SESSION_TIMEOUT_MS": "2000",
    }
    log = tmp_path / "metrics.log"
    kills_mid_stream = 0
    for _ in range(4):
        process = _start(env, log)
        try:
            before = await _progress(db_sessions)
            deadline = time.monotonic() + 30
            while (
                before < len(stream)
                and await _progress(db_sessions) == before
                and time.monotonic() < deadline
            ):
                assert process.poll() is None, log.read_text()
                await asyncio.sleep(0.02)
            await asyncio.sleep(rng.uniform(0.0, 0.25))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        progress = await _progress(db_sessions)
        kills_mid_stream += 0 < progress < len(stream)
    assert kills_mid_stream >= 2, "the kills should land while the stream is being consumed"

    process = _start(env, log)
    try:
        deadline = time.monotonic() + 40
        while await _progress(db_sessions) < len(stream):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert process.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            # The stream may have been fully counted by an earlier run: wait for this one.
            ready = None
            while ready is None or ready.status_code != 200:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                assert process.poll() is None, log.read_text()[-3000:]
                try:
                    ready = await http.get("/readyz")
                except httpx.TransportError:
                    ready = None
                if ready is None or ready.status_code != 200:
                    await asyncio.sleep(0.1)
            assert ready.json()["checks"] == {"kafka": True, "database": True}
            exposition = (await http.get("/metrics")).text
            assert "cx_consumer_lag" in exposition
            assert "cx_feedback_responses_total" in exposition
            report = (await http.get("/v1/kpis", params={"window": "28d"})).json()
            by_channel = (
                await http.get("/v1/kpis", params={"window": "28d", "group_by": "channel"})
            ).json()
            week = (await http.get("/v1/kpis", params={"window": "7d"})).json()
            series = (
                await http.get(
                    "/v1/kpis/timeseries",
                    params={
                        "metric": "responses",
                        "interval": "day",
                        "from": (now - timedelta(days=12)).isoformat(),
                    },
                )
            ).json()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()[-3000:]

    (group,) = report["groups"]
    want = _expected(distinct)
    assert group["responses"] == want["responses"] == 1500
    assert group["nps"]["n"] == want["nps_n"]
    assert group["nps"]["promoters"] == want["promoters"]
    assert group["nps"]["detractors"] == want["detractors"]
    assert group["nps"]["score"] == pytest.approx(want["nps"])
    assert group["csat"]["top2_pct"] == pytest.approx(want["csat_top2_pct"])
    assert group["ces"]["mean"] == pytest.approx(want["ces_mean"])
    assert group["sentiment"]["n"] == want["sentiment_n"]
    assert group["negative_share"] == pytest.approx(want["negative_share"])
    for g in by_channel["groups"]:
        want_ch = _expected(distinct, g["key"]["channel"])
        assert g["responses"] == want_ch["responses"]
        assert g["nps"]["score"] == pytest.approx(want_ch["nps"])
        assert g["ces"]["mean"] == pytest.approx(want_ch["ces_mean"])
    too_late = sum(1 for e in distinct if e.occurred_at < now - timedelta(days=7))
    assert week["groups"][0]["responses"] == 1500 - too_late
    # Late events land in the day they occurred, not the day they arrived.
    points = {p["start"][:10]: p["n"] for p in series["series"][0]["points"]}
    late_day = (now - timedelta(days=3)).astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    assert (
        points[late_day]
        >= sum(
            1
            for e in distinct
            if e.occurred_at.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat() == late_day
        )
        > 0
    )
    assert sum(points.values()) == 1500

"""Metrics benchmark: `python -m benchmarks.metrics [--events N] [--preload-events N]`.

Starts an embedded PostgreSQL (private temporary folder) and measures, in one run:

1. Ingest through the real path: one `cxloop metrics` process (a subprocess, as served) on the
   embedded broker, the topic filled with N events beforehand. The rate is taken from the
   first batch stored in PostgreSQL (positions are stored in the same transaction as the
   buckets) to the one covering all N, so start-up and the group join are not counted; CPU
   time per event of the metrics process, of the whole PostgreSQL server (backends, WAL
   writer, checkpointer, autovacuum) and of the broker; the process's RSS at half and at the
   end; and a check that exactly N events were counted.
   Then the processor alone (no Kafka), synchronous and with the pipelined writer: the
   records' values are encoded up front, the timed loop is decode + `handle`.
2. Query: p50/p99 of `GET /v1/kpis?window=90d&group_by=touchpoint,channel` (HTTP through the
   real app, in process, with auth) over 10,000,000 preloaded events: 90 days, 30 touchpoints,
   4 channels, 16 regions, 4 segments. The preload writes the aggregate rows directly (COPY)
   from synthetic events aggregated with numpy, exactly as the consumer would have stored
   them with the default retention (minute buckets for 8 days, hour buckets for 35 days, day
   and week buckets for all 90); every grain and cube is checked to sum to the events it
   holds, the day buckets to exactly 10,000,000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from aiokafka import TopicPartition
from sqlalchemy import text

from benchmarks.procfs import cpu_seconds, memory_mib
from benchmarks.topics import Record, fill_topic
from cxloop_metrics.buckets import floor_day, floor_hour, floor_interval
from cxloop_metrics.config import KpiConfig
from cxloop_metrics.labels import LabelLimiter
from cxloop_metrics.main import create_app
from cxloop_metrics.measures import COUNT_COLUMNS, DIMENSIONS, MEASURES
from cxloop_metrics.processor import MetricsProcessor
from cxloop_metrics.reports import ReportContext
from cxloop_metrics.settings import MetricsSettings
from cxruntime import apikeys
from cxruntime.auth import Authenticator
from cxruntime.consumer import Consumed, Decoded
from cxruntime.db import make_engine, make_sessionmaker
from cxruntime.embedded import EmbeddedKafka, EmbeddedPostgres, free_port
from cxruntime.kafka import ensure_topics
from cxruntime.migrations import migrate
from cxruntime.serve import settle_garbage_collector
from cxschema import CHANNELS, ENRICHED, FeedbackEnriched, Sentiment, encode

TOUCHPOINTS = [f"tp{i:02d}" for i in range(30)]
STAGES = ["awareness", "purchase", "fulfilment", "usage", "support"]
REGIONS = [
    f"DE-{c}"
    for c in ("BY", "BE", "BW", "HH", "HE", "NI", "NW", "RP", "SL", "SN", "ST", "SH", "TH", "MV")
] + ["AT-9", "CH-ZH"]
SEGMENTS = ["premium", "basic", "business", "trial"]
TOTAL_EVENTS = 10_000_000
DAYS = 90


def synthetic_event(i: int, rng: np.random.Generator, now: datetime) -> FeedbackEnriched:
    """One realistic enriched event: 90% occurred in the 10 minutes before it is counted
    (surveys and web/app feedback arrive live), 10% up to 7 days late (e-mail, call-centre
    exports)."""
    tp = int(rng.integers(30))
    late = rng.random() < 0.1
    age = int(rng.integers(7 * 86_400)) if late else int(rng.integers(600))
    commented = bool(rng.random() < 0.4)
    score = float(rng.uniform(-1, 1))
    return FeedbackEnriched.model_validate(
        {
            "id": f"bench-{i}",
            "occurred_at": now - timedelta(seconds=age),
            "channel": CHANNELS[int(rng.integers(4))],
            "customer": {
                "id": f"c{int(rng.integers(1_000_000))}",
                "region": REGIONS[int(rng.integers(16))],
                "segment": SEGMENTS[int(rng.integers(4))],
            },
            "scores": {"nps": int(rng.integers(11)), "csat": int(rng.integers(1, 6))},
            "comment": "Die Lieferung kam zu spät." if commented else None,
            "language": "de",
            "touchpoint": TOUCHPOINTS[tp],
            "journey_stage": STAGES[tp // 6],
            "source": "bench",
            "received_at": now,
            "sentiment": Sentiment(
                label="negative" if score < -0.3 else "positive", score=score if commented else 0
            ),
        }
    )


async def bench_ingest(
    url: str, events: int, batch: int, *, pipelined: bool, postmaster: int
) -> dict[str, float]:
    """Events/s through the processor alone (decode + handle), and RSS after half and all.

    `pipelined` runs the processor's writer beside the loop, as `cxloop metrics` does; else
    each `handle` commits before returning. The record values are encoded before the clock
    starts (encoding is the producer's cost, and building them between batches would stall the
    loop the writer shares), so the timed loop is exactly what the consumer does per batch.
    """
    engine = make_engine(url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)
    settings = MetricsSettings()
    processor = MetricsProcessor(
        sessions,
        tz=settings.tz,
        lateness=settings.metrics_lateness,
        hour_retention=settings.metrics_hour_retention,
        touchpoint_labels=LabelLimiter(30),
        writer_dsn=url,
        max_write=settings.metrics_write_batch,
    )
    writer = asyncio.create_task(processor.run()) if pipelined else None
    # Each mode counts its own events (distinct ids), after the other mode's offsets.
    first = events if pipelined else 0
    values = synthetic_values(first, events, datetime.now(UTC))
    tp = TopicPartition(ENRICHED, 0)
    rss: dict[int, float] = {}
    half = events // 2
    settle_garbage_collector()
    db_before = server_cpu_seconds(postmaster)
    started = time.perf_counter()
    cpu_started = time.process_time()
    for done in range(0, events, batch):
        offset = first + done
        records = [
            Consumed(ENRICHED, 0, offset + i, None, v, (), 0)
            for i, v in enumerate(values[done : done + batch])
        ]
        decoded = [Decoded(r, processor.decode(r)) for r in records]
        await processor.handle(decoded, {tp: offset + len(records)})
        for mark in (half, events):
            if done < mark <= done + batch:
                rss[mark] = memory_mib("self")
    if writer is not None:
        await processor.flush()
    elapsed = time.perf_counter() - started
    ours = time.process_time() - cpu_started
    db_cpu = server_cpu_seconds(postmaster) - db_before
    if writer is not None:
        processor.stop()
        await writer
    await engine.dispose()
    return {
        "events": float(events),
        "events_per_s": events / elapsed,
        "our_cpu_us": ours / events * 1e6,
        "db_cpu_us": db_cpu / events * 1e6,
        "rss_half_mib": rss.get(half, float("nan")),
        "rss_full_mib": rss.get(events, float("nan")),
    }


def synthetic_values(first: int, count: int, now: datetime) -> list[bytes]:
    """Record values of `count` synthetic events with ids from `first` (seeded per range)."""
    rng = np.random.default_rng(7 + first)
    return [encode(synthetic_event(first + i, rng, now)) for i in range(count)]


def server_cpu_seconds(postmaster: int) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, its live children (backends,
    WAL writer, checkpointer, autovacuum) and the children that already exited."""
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            child = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(child[1]) == postmaster:
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    """The embedded server's main process."""
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


async def _probe_latency(port: int, latencies: list[float]) -> None:
    """GET /healthz every 20 ms: how long the process's event loop, shared by the HTTP API
    and the consumer, keeps a request waiting while it ingests."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        while True:
            started = time.perf_counter()
            try:
                await http.get("/healthz")
            except httpx.TransportError:
                await asyncio.sleep(0.05)  # not listening yet
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _probing(port: int) -> AsyncIterator[list[float]]:
    """The latencies of HTTP requests to the process while the block runs (`_probe_latency`)."""
    latencies: list[float] = []
    probe = asyncio.create_task(_probe_latency(port, latencies))
    try:
        yield latencies
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe


async def _time_commits(
    conn: Any,
    total: int,
    process: subprocess.Popen[bytes],
    *,
    postmaster: int,
    broker: int,
    log: Path,
    latencies: list[float],
) -> dict[str, float]:
    """Poll the stored positions (committed in the same transaction as the buckets) until they
    cover `total` records; time and CPU from the first commit to the last, and the latencies
    probed meanwhile (cleared at the first commit)."""
    first: tuple[float, int, float, float, float] | None = None
    rss_half = float("nan")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cxloop metrics exited with {process.returncode}: {_tail(log)}")
        done = int(await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM metrics_offsets"))
        now = time.monotonic()
        if first is None and done > 0:
            latencies.clear()
            first = (
                now,
                done,
                cpu_seconds(process.pid),
                server_cpu_seconds(postmaster),
                cpu_seconds(broker),
            )
        if first is not None and rss_half != rss_half and done >= total // 2:
            rss_half = memory_mib(process.pid)
        if done >= total:
            assert first is not None
            counted = total - first[1]
            return {
                "events": float(counted),
                "events_per_s": counted / (now - first[0]),
                "our_cpu_us": (cpu_seconds(process.pid) - first[2]) / counted * 1e6,
                "db_cpu_us": (server_cpu_seconds(postmaster) - first[3]) / counted * 1e6,
                "broker_cpu_us": (cpu_seconds(broker) - first[4]) / counted * 1e6,
                "rss_half_mib": rss_half,
                "rss_full_mib": memory_mib(process.pid),
                **_latency_summary(latencies),
            }
        await asyncio.sleep(0.02)
    raise TimeoutError("cxloop metrics did not finish in 900 s")


def _start_metrics(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cxruntime", "metrics"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _latency_summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies) or [float("nan")]
    return {
        "probe_n": float(len(latencies)),
        "probe_p50_ms": statistics.median(ordered),
        "probe_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "probe_max_ms": ordered[-1],
    }


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def bench_service(
    pg: EmbeddedPostgres, tmp: Path, events: int, partitions: int
) -> dict[str, float]:
    """One `cxloop metrics` process on the embedded broker with the topic filled beforehand:
    events/s from its first stored commit to the commit that covers every record."""
    url = pg.create_database("service")
    await asyncio.to_thread(migrate, url)
    broker = EmbeddedKafka(log_path=tmp / "tansu.log")
    broker.start()
    try:
        await ensure_topics(broker.bootstrap, partitions=partitions)
        values = synthetic_values(0, events, datetime.now(UTC))
        keyed: list[Record] = [(f"c{i % 5000}".encode(), v, []) for i, v in enumerate(values)]
        await fill_topic(broker.bootstrap, ENRICHED, keyed)
        del keyed
        del values
        port = free_port()
        env = {
            **os.environ,
            "CX_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "CX_DATABASE_URL": url,
            "CX_METRICS_PORT": str(port),
            "CX_DATA_DIR": str(tmp / "data"),
            "CX_LOG_LEVEL": "WARNING",
        }
        postmaster = postmaster_pid(pg)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        log = tmp / "metrics.log"
        try:
            process = _start_metrics(env, log)
            try:
                assert broker.process is not None
                async with _probing(port) as latencies:
                    result = await _time_commits(
                        conn,
                        events,
                        process,
                        postmaster=postmaster,
                        broker=broker.process.pid,
                        log=log,
                        latencies=latencies,
                    )
            finally:
                process.terminate()
                process.wait(timeout=30)
            counted = await conn.fetchval("SELECT sum(responses) FROM metrics_day WHERE cube = 1")
            if int(counted or 0) != events:
                raise RuntimeError(f"counted {counted} of {events} events: {_tail(log)}")
        finally:
            await conn.close()
        return result
    finally:
        broker.stop()


def _aggregate(
    keys: np.ndarray, cols: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    unique, inverse = np.unique(keys, return_inverse=True)
    out = {}
    for name, values in cols.items():
        out[name] = np.bincount(inverse, weights=values, minlength=len(unique))
    return unique, out


async def add_to_weeks(conn: Any, records: list[tuple[Any, ...]], columns: list[str]) -> int:
    """Add one day's week-bucket rows into `metrics_week` (upsert through a staging table)."""
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS week_stage (LIKE metrics_week)")
    await conn.execute("TRUNCATE week_stage")
    await conn.copy_records_to_table("week_stage", records=records, columns=columns)
    key = "cube, bucket_start, " + ", ".join(DIMENSIONS)
    updates = ", ".join(f"{m} = metrics_week.{m} + EXCLUDED.{m}" for m in MEASURES)
    status = await conn.execute(
        f"INSERT INTO metrics_week SELECT * FROM week_stage "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )
    return int(status.split()[-1])


async def preload(url: str, now: datetime, tz: Any, total_events: int) -> int:
    """COPY the buckets of exactly `total_events` synthetic events; returns rows written."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    rng = np.random.default_rng(11)
    today = floor_day(now, tz)
    # The local days of the 90-day window, today last; today has only its elapsed minutes.
    # Events are spread evenly in time, so every minute carries the same load.
    days = [
        floor_day(today - timedelta(days=DAYS - 1 - d) + timedelta(hours=12), tz)
        for d in range(DAYS)
    ]
    lengths = [
        int((floor_day(day + timedelta(hours=36), tz) - day).total_seconds() // 60)
        for day in days[:-1]
    ]
    lengths.append(max(1, int((now - days[-1]).total_seconds() // 60)))
    weights = np.array(lengths, dtype=float) / sum(lengths)
    per_day = np.floor(weights * total_events).astype(np.int64)
    per_day[: total_events - int(per_day.sum())] += 1
    assert int(per_day.sum()) == total_events
    rows_written = 0
    columns = ["cube", "bucket_start", *DIMENSIONS, *MEASURES]
    tp_weights = rng.dirichlet(np.ones(30) * 2)
    for d in range(DAYS):
        n = int(per_day[d])
        day = days[d]
        day_len = int((floor_day(day + timedelta(hours=36), tz) - day).total_seconds() // 60)
        minute = rng.integers(0, lengths[d], n)
        tp = rng.choice(30, n, p=tp_weights)
        ch = rng.integers(0, 4, n)
        rg = rng.integers(0, 16, n)
        sg = rng.integers(0, 4, n)
        nps = np.where(rng.random(n) < 0.8, rng.integers(0, 11, n), -1)
        csat = np.where(rng.random(n) < 0.5, rng.integers(1, 6, n), -1)
        ces = np.where(rng.random(n) < 0.4, rng.integers(1, 8, n), -1)
        commented = rng.random(n) < 0.4
        sent = np.where(commented, rng.uniform(-1, 1, n), 0.0)
        cols: dict[str, np.ndarray] = {"responses": np.ones(n)}
        for s in range(11):
            cols[f"nps_{s}"] = (nps == s).astype(float)
        for s in range(1, 6):
            cols[f"csat_{s}"] = (csat == s).astype(float)
        for s in range(1, 8):
            cols[f"ces_{s}"] = (ces == s).astype(float)
        cols["sentiment_n"] = commented.astype(float)
        cols["negative_n"] = (commented & (sent < -0.3)).astype(float)
        cols["sentiment_sum"] = sent
        cols["sentiment_sumsq"] = sent * sent
        grains: list[tuple[str, np.ndarray, list[datetime]]] = []
        grains.append(("metrics_day", np.zeros(n, dtype=np.int64), [day]))
        # Week buckets (cubes 1 and 2) accumulate over the days of the week.
        grains.append(
            ("metrics_week", np.zeros(n, dtype=np.int64), [floor_interval(day, "week", tz)])
        )
        age = now - day
        if age <= timedelta(days=36):
            hour_starts = sorted(
                {floor_hour(day + timedelta(minutes=m), tz) for m in range(0, day_len, 60)}
            )
            hour_index = (
                np.searchsorted(
                    np.array([(h - day).total_seconds() // 60 for h in hour_starts]),
                    minute,
                    side="right",
                )
                - 1
            )
            grains.append(("metrics_hour", hour_index.astype(np.int64), hour_starts))
        if age <= timedelta(days=8):
            grains.append(  # minute buckets hold only the full cube (cube 0)
                (
                    "metrics_minute",
                    minute.astype(np.int64),
                    [day + timedelta(minutes=m) for m in range(day_len)],
                )
            )
        cubes = {
            0: (tp, ch, rg, sg),
            1: (tp, ch, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)),
            2: (np.zeros(n, dtype=np.int64), ch, rg, sg),
        }
        for table, bucket, starts in grains:
            records = []
            for cube, (a, b, c, e) in cubes.items():
                if (table == "metrics_minute" and cube != 0) or (
                    table == "metrics_week" and cube == 0
                ):
                    continue
                key = (((bucket * 32 + a) * 4 + b) * 16 + c) * 4 + e
                unique, sums = _aggregate(key, cols)
                e_ = unique % 4
                c_ = (unique // 4) % 16
                b_ = (unique // 64) % 4
                a_ = (unique // 256) % 32
                t_ = unique // 8192
                for i in range(len(unique)):
                    tpi = int(a_[i])
                    record: list[Any] = [
                        cube,
                        starts[int(t_[i])],
                        TOUCHPOINTS[tpi] if cube != 2 else "",
                        CHANNELS[int(b_[i])],
                        STAGES[tpi // 6] if cube != 2 else "",
                        REGIONS[int(c_[i])] if cube != 1 else "",
                        SEGMENTS[int(e_[i])] if cube != 1 else "",
                    ]
                    record += [int(sums[m][i]) for m in COUNT_COLUMNS]
                    record += [float(sums["sentiment_sum"][i]), float(sums["sentiment_sumsq"][i])]
                    records.append(tuple(record))
            if table == "metrics_week":
                rows_written += await add_to_weeks(conn, records, columns)
            else:
                await conn.copy_records_to_table(table, records=records, columns=columns)
                rows_written += len(records)
    # What autovacuum does in a running system: clear the dead row versions of the week
    # buckets' in-place updates and refresh the statistics.
    await conn.execute("VACUUM ANALYZE")
    total = await conn.fetchval("SELECT sum(responses) FROM metrics_day WHERE cube = 1")
    cubes_of = {"metrics_minute": (0,), "metrics_week": (1, 2)}
    for table in ("metrics_week", "metrics_day", "metrics_hour", "metrics_minute"):
        for cube in cubes_of.get(table, (0, 1, 2)):
            count = await conn.fetchval(
                f"SELECT sum(responses) FROM {table} WHERE cube = $1",
                cube,
            )
            print(f"    {table} cube {cube}: {int(count or 0):,} events")
    await conn.close()
    assert int(total) == total_events, total
    return rows_written


async def bench_query(url: str, rounds: int) -> dict[str, dict[str, float]]:
    """p50/p99 of 90-day KPI requests over HTTP (in process) against the preloaded buckets,
    and the CPU time per request here and in the (single) PostgreSQL backend."""
    engine = make_engine(url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        backend = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
    settings = MetricsSettings()
    app = create_app(settings)
    app.state.sessions = sessions
    app.state.authenticator = Authenticator(sessions)
    app.state.report_context = ReportContext(
        config=KpiConfig(),
        tz=settings.tz,
        timezone=settings.metrics_timezone,
        min_sample=settings.metrics_min_sample,
        lateness=settings.metrics_lateness,
        hour_retention=settings.metrics_hour_retention,
    )
    async with sessions() as s, s.begin():
        _, key = await apikeys.create_key(s, name=f"bench-{uuid.uuid4().hex[:8]}", scopes=["read"])
    queries = {
        "90d by touchpoint,channel": {"window": "90d", "group_by": "touchpoint,channel"},
        "90d by region,segment": {"window": "90d", "group_by": "region,segment"},
        "90d by touchpoint, region=DE-BY": {
            "window": "90d",
            "group_by": "touchpoint",
            "region": "DE-BY",
        },
        "28d by channel": {"window": "28d", "group_by": "channel"},
        "timeseries 90d by day": None,
    }
    results: dict[str, dict[str, float]] = {}
    settle_garbage_collector()  # what `cxloop metrics` does once started (cxruntime.serve)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://metrics", headers={"X-API-Key": key}
    ) as http:
        for name, query in queries.items():
            path = "/v1/kpis"
            params = query
            if params is None:
                path = "/v1/kpis/timeseries"
                params = {
                    "metric": "nps",
                    "interval": "day",
                    "from": (datetime.now(UTC) - timedelta(days=89)).isoformat(),
                }
            for _ in range(5):
                response = await http.get(path, params=params)
                response.raise_for_status()
            times = []
            cpu_started, db_started = time.process_time(), cpu_seconds(backend)
            for _ in range(rounds):
                started = time.perf_counter()
                response = await http.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            ours = (time.process_time() - cpu_started) / rounds * 1000
            db = (cpu_seconds(backend) - db_started) / rounds * 1000
            body = response.json()
            groups = len(body.get("groups", body.get("series", [{}])[0].get("points", [])))
            times.sort()
            results[name] = {
                "p50_ms": statistics.median(times),
                "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
                "groups": float(groups),
                "our_cpu_ms": ours,
                "db_cpu_ms": db,
                "responses": float(
                    sum(g["responses"] for g in body["groups"]) if "groups" in body else 0
                ),
            }
    await engine.dispose()
    return results


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="cxbench-metrics-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        pg.start()
        try:
            print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            if not args.skip_ingest:
                print(
                    f"ingest, one `cxloop metrics` process on the embedded broker: "
                    f"{args.events:,} events on {args.partitions} partitions, filled beforehand",
                    flush=True,
                )
                service = await bench_service(pg, Path(tmp), args.events, args.partitions)
                print(
                    f"  {service['events_per_s']:,.0f} events/s wall clock, from the first stored "
                    "commit to the one covering every record (consume, decode, dedup, bucket "
                    "upserts and offsets in one transaction per batch or merged batches, Kafka "
                    "commit)"
                )
                print(
                    f"  CPU per event: {service['our_cpu_us']:.0f} us in the metrics process + "
                    f"{service['db_cpu_us']:.0f} us in PostgreSQL (every server process) + "
                    f"{service['broker_cpu_us']:.0f} us in the broker"
                )
                print(
                    f"  metrics process RSS at half: {service['rss_half_mib']:.1f} MiB; "
                    f"at the end: {service['rss_full_mib']:.1f} MiB"
                )
                print(
                    f"  GET /healthz on the same process meanwhile: "
                    f"p50 {service['probe_p50_ms']:.1f} ms, p99 {service['probe_p99_ms']:.1f} ms, "
                    f"max {service['probe_max_ms']:.1f} ms ({service['probe_n']:.0f} requests; "
                    "the API shares the event loop with the consumer's decoding)",
                    flush=True,
                )
                ingest_url = pg.create_database("ingest")
                await asyncio.to_thread(migrate, ingest_url)
            postmaster = postmaster_pid(pg)
            for pipelined in () if args.skip_ingest else (False, True):
                mode = "pipelined writer (as served)" if pipelined else "synchronous handle"
                print(
                    f"ingest, processor alone ({mode}): {args.events:,} events, "
                    f"batches of {args.batch}"
                )
                ingest = await bench_ingest(
                    ingest_url, args.events, args.batch, pipelined=pipelined, postmaster=postmaster
                )
                ours, db = ingest["our_cpu_us"], ingest["db_cpu_us"]
                print(
                    f"  {ingest['events_per_s']:,.0f} events/s wall clock "
                    "(decode + dedup + minute/hour/day/week upserts + offsets, one process)"
                )
                print(
                    f"  CPU per event: {ours:.0f} us in this process + {db:.0f} us in "
                    "PostgreSQL (every server process)"
                )
                print(
                    f"  RSS after {args.events // 2:,} events: {ingest['rss_half_mib']:.1f} MiB; "
                    f"after {args.events:,}: {ingest['rss_full_mib']:.1f} MiB",
                    flush=True,
                )
            if args.skip_query:
                return 0
            query_url = pg.create_database("query")
            await asyncio.to_thread(migrate, query_url)
            settings = MetricsSettings()
            now = datetime.now(UTC)
            started = time.perf_counter()
            rows = await preload(query_url, now, settings.tz, args.preload_events)
            print(
                f"preload: {args.preload_events:,} events as {rows:,} bucket rows in "
                f"{time.perf_counter() - started:.0f}s (written directly; sum checked)",
                flush=True,
            )
            results = await bench_query(query_url, args.rounds)
            for name, r in results.items():
                print(
                    f"  {name:<34} p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                    f"CPU {r['our_cpu_ms']:.1f} + {r['db_cpu_ms']:.1f} ms (app + PostgreSQL)  "
                    f"({r['groups']:.0f} groups/points, {r['responses']:,.0f} responses)"
                )
            print(
                f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
            )
        finally:
            pg.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics")
    parser.add_argument("--events", type=int, default=100_000, help="events to ingest per mode")
    parser.add_argument(
        "--batch",
        type=int,
        default=MetricsSettings().metrics_max_batch,
        help="processor-alone batch size (default: the service's CX_METRICS_MAX_BATCH)",
    )
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic")
    parser.add_argument("--rounds", type=int, default=200, help="requests per query kind")
    parser.add_argument("--skip-query", action="store_true", help="ingest only")
    parser.add_argument("--skip-ingest", action="store_true", help="query only")
    parser.add_argument(
        "--preload-events", type=int, default=TOTAL_EVENTS, help="events behind the query test"
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

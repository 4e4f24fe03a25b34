"""Collector benchmark: `python -m benchmarks.collector`.

Starts the embedded PostgreSQL and Tansu broker, `cxloop collector` as its own process, and a
bare FastAPI endpoint with the same validation and no Kafka (and no auth) as another process.
Load comes from a third process (a raw HTTP/1.1 keep-alive client on asyncio), so it does not
share the servers' event loops. In one run it measures, interleaving bare and collector rounds:

- single-event requests/s and p50/p99 latency at fixed concurrencies (closed loop; 32 and 64
  connections by default),
- the same for the bare endpoint, and the ratio (each round's collector figure over the same
  round's bare figure, median over the rounds),
- the same for the bare endpoint served through the collector's route class (`RequestRoute`,
  which skips FastAPI's per-request parameter solving), and the ratio against it: the like-for-
  like figure, what the collector's own work and Kafka cost on the same framework path,
- the same for the collector with Kafka's acknowledgement replaced by an immediate one (auth,
  rate limit, dedup, telemetry and middleware kept), which splits the gap to the bare endpoint
  into the Kafka path and the rest,
- p50/p99 latency at a fixed offered rate of 1,000 requests/s (open loop, latency counted from
  the scheduled send time, so queueing is not hidden),
- batch throughput in events/s (500-event batches, once per round),
- the collector's peak RSS.

`--pin` puts the server under test (bare or collector, one at a time under load) on the first
CPU and everything else (broker, PostgreSQL, load) on the others, so the scheduler cannot place
the broker or the load on the server's core in one round and not in the next.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from benchmarks.procfs import cpu_seconds, memory_mib
from cxloop_collector.intake import accept, field_errors
from cxruntime.probes import wait_for_http
from cxschema import PLAIN_SUBMISSION

HOST = "127.0.0.1"
VARIANTS = ("bare", "bare-lean", "no-kafka", "collector")
WARMUP_S = 1.0

COMMENTS = (
    "Die Lieferung kam drei Tage zu spät.",
    "Super schneller Versand, gerne wieder!",
    "The checkout kept failing with my credit card.",
    "Kundenservice war freundlich, aber die Wartezeit war zu lang.",
    "Great app, but the search is slow.",
    None,
)


def make_events(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """Realistic native events without ids (the collector generates them)."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        event: dict[str, Any] = {
            "channel": rng.choice(("web", "app")),
            "customer": {"id": f"crm-{rng.randrange(100_000)}", "segment": "premium"},
            "scores": {"nps": rng.randrange(11), "csat": rng.randrange(1, 6)},
            "context": {"url": f"https://shop.example/orders/{i}"},
            "occurred_at": "2026-11-23T10:15:00+01:00",
        }
        comment = rng.choice(COMMENTS)
        if comment:
            event["comment"] = comment
        events.append(event)
    return events


def request_bytes(path: str, body: bytes, key: str | None) -> bytes:
    """A complete HTTP/1.1 keep-alive POST."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if key:
        head += f"X-API-Key: {key}\r\n"
    return head.encode() + b"\r\n" + body


# --- load generator (runs in its own process) -------------------------------------------------


class Connection:
    """One keep-alive connection sending requests one after another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length:
            await self.reader.readexactly(length)
        return status


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, in the unit given."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(
    port: int, requests: list[bytes], *, concurrency: int, duration_s: float, warmup_s: float
) -> dict[str, Any]:
    """`concurrency` connections sending back to back; throughput and latency."""
    connections = [await Connection.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    counter = 0

    async def worker(connection: Connection, offset: int) -> None:
        nonlocal counter
        index = offset
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                return
            status = await connection.send(requests[index % len(requests)])
            index += concurrency
            done = time.perf_counter()
            if sent >= measure_from:
                latencies.append(done - sent)
                statuses[status] = statuses.get(status, 0) + 1
                counter += 1

    await asyncio.gather(*(worker(c, i) for i, c in enumerate(connections)))
    for connection in connections:
        connection.writer.close()
    return {
        "requests": counter,
        "requests_per_s": counter / duration_s,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "statuses": statuses,
    }


async def open_loop(
    port: int, requests: list[bytes], *, rate: float, duration_s: float, warmup_s: float
) -> dict[str, Any]:
    """A fixed offered rate; latency from the scheduled send time (no coordinated omission)."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    tasks: set[asyncio.Task[None]] = set()
    total = int(rate * (warmup_s + duration_s))
    start = time.perf_counter() + 0.05
    measure_from = start + warmup_s

    async def one(index: int, scheduled: float) -> None:
        connection = await pool.get()
        try:
            status = await connection.send(requests[index % len(requests)])
        finally:
            pool.put_nowait(connection)
        if scheduled >= measure_from:
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1

    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(index, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    achieved = len(latencies) / duration_s
    return {
        "offered_per_s": rate,
        "completed_per_s": achieved,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "statuses": statuses,
    }


def load_main(args: argparse.Namespace) -> int:
    """Entry of the load-generator process: prints one JSON line of results."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    key = args.key or None
    events = make_events(2000, seed=args.seed)
    if args.kind == "batch":
        bodies = [orjson.dumps({"events": events[i : i + 500]}) for i in range(0, len(events), 500)]
        requests = [request_bytes("/v1/feedback/batch", b, key) for b in bodies]
    else:
        requests = [request_bytes("/v1/feedback", orjson.dumps(e), key) for e in events]
    if args.rate:
        result = asyncio.run(
            open_loop(
                args.port, requests, rate=args.rate, duration_s=args.duration, warmup_s=args.warmup
            )
        )
    else:
        result = asyncio.run(
            closed_loop(
                args.port,
                requests,
                concurrency=args.concurrency[0],
                duration_s=args.duration,
                warmup_s=args.warmup,
            )
        )
    print(json.dumps(result))
    return 0


# --- the bare endpoint (runs in its own process) ----------------------------------------------


def bare_app(*, lean: bool) -> FastAPI:
    """A FastAPI app validating like the collector, without auth and Kafka; FastAPI configured
    as in every cxloop service (its OpenTelemetry hooks off), so the ratio compares the work
    and not the framework settings. With `lean` its endpoint goes through the collector's
    route class, `RequestRoute`, and comes ahead of FastAPI's documentation routes, as the
    collector's ingest endpoints do (`cxruntime.ops.add_routes`)."""
    from cxruntime.ops import NO_OPENTELEMETRY, RequestRoute, add_routes

    app = FastAPI(telemetry=NO_OPENTELEMETRY)

    async def post(request: Request) -> Response:
        body = await request.body()
        try:
            submission = PLAIN_SUBMISSION.validate_json(body)
        except ValidationError as exc:
            return Response(orjson.dumps({"errors": field_errors(exc)}), status_code=422)
        record = accept(submission, source="/bare", received_at=datetime.now(UTC))
        return Response(
            orjson.dumps({"id": record.event_id, "status": "accepted"}),
            status_code=202,
            media_type="application/json",
        )

    if lean:
        router = APIRouter(route_class=RequestRoute)
        router.post("/v1/feedback", status_code=202)(post)
        add_routes(app, router)
    else:
        app.post("/v1/feedback", status_code=202)(post)
    return app


def bare_main(args: argparse.Namespace) -> int:
    """Serve `bare_app` (`--lean`: the lean variant) with uvicorn."""
    import uvicorn

    app = bare_app(lean=args.lean)
    uvicorn.run(app, host=HOST, port=args.port, log_config=None, access_log=False)
    return 0


def no_kafka_main() -> int:
    """`cxloop collector` whose publisher acknowledges every record at once (no Kafka path)."""
    from cxloop_collector import main as collector_main
    from cxloop_collector.publisher import Outcome, Publisher, Record

    async def publish(self: Publisher, records: Sequence[Record]) -> list[Outcome]:
        return [Outcome.ACCEPTED] * len(records)

    async def publish_one(self: Publisher, record: Record) -> Outcome:
        return Outcome.ACCEPTED

    Publisher.publish = publish  # type: ignore[method-assign]
    Publisher.publish_one = publish_one  # type: ignore[method-assign]
    return collector_main.run()


# --- orchestration ----------------------------------------------------------------------------


def _run_load(port: int, *, key: str | None, kind: str, **options: Any) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.collector",
        "--load",
        "--port",
        str(port),
        "--kind",
        kind,
        "--key",
        key or "",
    ]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _measured(pids: list[int], port: int, **options: Any) -> dict[str, Any]:
    """Run a load and add the CPU microseconds per request each of `pids` spent on it."""
    before = [cpu_seconds(pid) for pid in pids]
    result = _run_load(port, **options)
    after = [cpu_seconds(pid) for pid in pids]
    total = result.get("requests") or 1
    warm = 1 + float(options.get("warmup", 0)) / float(options.get("duration", 1))
    # CPU is read around the whole run, warm-up included; scale the count to match.
    result["cpu_us_per_request"] = [
        (b - a) * 1e6 / (total * warm) for a, b in zip(before, after, strict=True)
    ]
    return result


def _produce_counts(port: int) -> tuple[float, float]:
    """(events accepted, batches acknowledged by Kafka) so far, from the collector's /metrics."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    accepted = batches = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cx_collector_events_total":
                if sample.labels.get("outcome") == "accepted":
                    accepted += sample.value
            elif sample.name == "cx_collector_produce_seconds_count":
                batches = sample.value
    return accepted, batches


def _create_key(database_url: str) -> str:
    from cxruntime import apikeys
    from cxruntime.db import make_engine, make_sessionmaker

    async def create() -> str:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                _, secret = await apikeys.create_key(session, name="bench", scopes=["ingest"])
            return secret
        finally:
            await engine.dispose()

    return asyncio.run(create())


def pin_cpus(pin: bool) -> set[int]:
    """With `pin` and at least two CPUs: keep this process, and so the broker, PostgreSQL and
    the load it starts, off the first CPU, and return that CPU for the server under test (bare
    or collector, one at a time under load). Otherwise nothing is pinned; empty set."""
    if not pin or not hasattr(os, "sched_setaffinity"):
        return set()  # affinity is a Linux call; elsewhere nothing is pinned
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set()
    os.sched_setaffinity(0, set(cpus[1:]))
    return {cpus[0]}


def main_run(args: argparse.Namespace) -> int:
    """Set everything up, measure, print the figures."""
    from cxruntime.embedded import EmbeddedKafka, EmbeddedPostgres, free_port
    from cxruntime.kafka import ensure_topics
    from cxruntime.migrations import migrate

    server_cpus = pin_cpus(args.pin)
    work = Path(tempfile.mkdtemp(prefix="cxbench-"))
    postgres = EmbeddedPostgres(work / "pg")
    kafka = EmbeddedKafka(log_path=work / "tansu.log")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        postgres.start()
        database_url = postgres.create_database("bench")
        migrate(database_url)
        key = _create_key(database_url)
        kafka.start()
        asyncio.run(ensure_topics(kafka.bootstrap, partitions=3))

        collector_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "CX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "CX_DATABASE_URL": database_url,
            "CX_DATA_DIR": str(work / "data"),
            "CX_COLLECTOR_PORT": str(collector_port),
            "CX_COLLECTOR_RATE_LIMIT_PER_S": "1000000",
            "CX_COLLECTOR_MAX_IN_FLIGHT": "50000",
            "CX_LOG_LEVEL": "WARNING",
        }
        cxloop = str(Path(sys.executable).parent / "cxloop")
        collector = subprocess.Popen([cxloop, "collector"], env=env)
        processes.append(collector)
        bare_command = [sys.executable, "-m", "benchmarks.collector", "--bare"]
        bare = subprocess.Popen([*bare_command, "--port", str(bare_port)], env=env)
        processes.append(bare)
        lean_port = free_port()
        lean = subprocess.Popen([*bare_command, "--lean", "--port", str(lean_port)], env=env)
        processes.append(lean)
        no_kafka_port = free_port()
        no_kafka = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.collector", "--no-kafka"],
            env={**env, "CX_COLLECTOR_PORT": str(no_kafka_port)},
        )
        processes.append(no_kafka)
        if server_cpus:
            for server in processes:
                os.sched_setaffinity(server.pid, server_cpus)
        wait_for_http(f"http://{HOST}:{collector_port}/readyz", process=collector)
        wait_for_http(f"http://{HOST}:{bare_port}/docs", process=bare)
        wait_for_http(f"http://{HOST}:{lean_port}/docs", process=lean)
        wait_for_http(f"http://{HOST}:{no_kafka_port}/readyz", process=no_kafka)
        assert kafka.process is not None
        broker_pid = kafka.process.pid

        single: dict[tuple[str, int], list[dict[str, Any]]] = {
            (name, c): [] for name in VARIANTS for c in args.concurrency
        }
        batches: list[dict[str, Any]] = []
        servers = {
            "bare": ([bare.pid], bare_port, None),
            "bare-lean": ([lean.pid], lean_port, None),
            "no-kafka": ([no_kafka.pid], no_kafka_port, key),
            "collector": ([collector.pid, broker_pid], collector_port, key),
        }
        # Short rounds, each variant in turn within a round, so that the host's slow drifts
        # (seen here lasting from seconds to minutes) fall on all variants alike.
        for _ in range(args.rounds):
            for concurrency in args.concurrency:
                for name in VARIANTS:
                    pids, port, variant_key = servers[name]
                    before = _produce_counts(collector_port) if name == "collector" else (0, 0)
                    measured = _measured(
                        pids,
                        port,
                        key=variant_key,
                        kind="single",
                        concurrency=concurrency,
                        duration=args.duration,
                        warmup=WARMUP_S,
                        rate=0,
                    )
                    if name == "collector":
                        after = _produce_counts(collector_port)
                        measured["records_per_batch"] = (after[0] - before[0]) / max(
                            1.0, after[1] - before[1]
                        )
                    single[(name, concurrency)].append(measured)
            batches.append(
                _measured(
                    [collector.pid, broker_pid],
                    collector_port,
                    key=key,
                    kind="batch",
                    concurrency=4,
                    duration=args.duration,
                    warmup=WARMUP_S,
                    rate=0,
                )
            )
        paced = _run_load(
            collector_port,
            key=key,
            kind="single",
            rate=args.rate,
            duration=max(args.duration, 8.0),
            warmup=WARMUP_S,
        )
        rss = memory_mib(collector.pid, "VmHWM")
        report(single, paced, batches, rss, args, server_cpus)
        return 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        kafka.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(
    single: dict[tuple[str, int], list[dict[str, Any]]],
    paced: dict[str, Any],
    batches: list[dict[str, Any]],
    rss_mb: float,
    args: argparse.Namespace,
    pinned: set[int],
) -> None:
    """Print the figures and the targets of issue 3."""
    placement = (
        f"server under test pinned to CPU {min(pinned)}, broker and load on the others"
        if pinned
        else "nothing pinned"
    )
    print(
        f"\ncollector benchmark on {os.cpu_count()} CPUs, load from a separate process, {placement}"
    )
    print(
        f"single event, closed loop, {args.rounds} rounds of {args.duration:g} s per variant and "
        "concurrency, the variants in turn within each round (medians):"
    )
    for concurrency in args.concurrency:
        report_single(concurrency, {name: single[(name, concurrency)] for name in VARIANTS})
    print(
        f"paced {paced['offered_per_s']:.0f} req/s: completed {paced['completed_per_s']:.0f}/s, "
        f"p50 {paced['p50_ms']:.2f} ms, p99 {paced['p99_ms']:.2f} ms, max {paced['max_ms']:.1f} ms"
        f"  (target p99 < 25 ms; statuses {paced['statuses']})"
    )
    events = [b["requests_per_s"] * 500 for b in batches]
    each = ", ".join(f"{e:.0f}" for e in events)
    print(
        f"batch of 500, concurrency 4: {statistics.median(events):.0f} events/s (rounds: {each}), "
        f"p50 {_median(batches, 'p50_ms'):.1f} ms, p99 {_median(batches, 'p99_ms'):.1f} ms"
        f"  (target >= 30000 events/s; statuses {batches[-1]['statuses']})"
    )
    print(
        f"  CPU per event: collector {_median_cpu(batches, 0) / 500:.1f} us, "
        f"broker {_median_cpu(batches, 1) / 500:.1f} us"
    )
    print(f"collector peak RSS: {rss_mb:.0f} MB  (target < 256 MB)")


def _median(results: list[dict[str, Any]], field: str) -> float:
    return float(statistics.median(r[field] for r in results))


def _median_cpu(results: list[dict[str, Any]], process: int) -> float:
    return float(statistics.median(r["cpu_us_per_request"][process] for r in results))


def report_single(concurrency: int, rounds: dict[str, list[dict[str, Any]]]) -> None:
    """The single-event figures at one concurrency."""
    print(f" concurrency {concurrency}:")
    cpu = {name: _median_cpu(rounds[name], 0) for name in VARIANTS}
    for name in VARIANTS:
        results = rounds[name]
        rps = _median(results, "requests_per_s")
        # The share of one core the server was busy: below 1 it waited for something.
        busy = rps * cpu[name] / 1e6
        each = ", ".join(f"{r['requests_per_s']:.0f}" for r in results)
        print(
            f"  {name:<10} {rps:8.0f} req/s   p50 {_median(results, 'p50_ms'):6.2f} ms   "
            f"p99 {_median(results, 'p99_ms'):6.2f} ms   server busy {busy:.2f} "
            f"(rounds: {each}; statuses {results[-1]['statuses']})"
        )
    print(f"  ratio collector/bare: {_paired(rounds, 'bare', 'target >= 0.80')}")
    like = "like for like: the bare endpoint on the collector's route class"
    print(f"  ratio collector/bare-lean: {_paired(rounds, 'bare-lean', like)}")
    lean_rps = _median(rounds["bare-lean"], "requests_per_s")
    print(
        f"  ratio no-kafka/bare-lean: "
        f"{_median(rounds['no-kafka'], 'requests_per_s') / lean_rps:.2f}  "
        "(the collector with Kafka's acknowledgement replaced by an immediate one)"
    )
    bare_cpu, lean_cpu = cpu["bare"], cpu["bare-lean"]
    no_kafka_cpu, coll_cpu = cpu["no-kafka"], cpu["collector"]
    print(
        f"  CPU per request: bare {bare_cpu:.0f} us, bare-lean {lean_cpu:.0f} us, no-kafka "
        f"{no_kafka_cpu:.0f} us, collector {coll_cpu:.0f} us (+ broker "
        f"{_median_cpu(rounds['collector'], 1):.0f} us); ratio bare/collector "
        f"{bare_cpu / coll_cpu:.2f}"
    )
    print(
        f"  FastAPI's parameter solving and documentation routes skipped by the route class and "
        f"order: {bare_cpu - lean_cpu:.0f} us; "
        f"the collector's work beyond bare-lean: Kafka path {coll_cpu - no_kafka_cpu:.0f} us, "
        f"auth, rate limit, dedup, telemetry and middleware {no_kafka_cpu - lean_cpu:.0f} us"
    )
    per_batch = ", ".join(f"{r['records_per_batch']:.1f}" for r in rounds["collector"])
    print(
        f"  records per Kafka batch (collector rounds): {per_batch}; fewer records per batch "
        "means more produce work per request"
    )


def _paired(rounds: dict[str, list[dict[str, Any]]], baseline: str, note: str) -> str:
    """The collector over `baseline`: each round's collector figure over the same round's
    baseline figure, then the median; a paired estimate, steadier than a ratio of medians when
    the host drifts between rounds."""
    paired = [
        c["requests_per_s"] / b["requests_per_s"]
        for b, c in zip(rounds[baseline], rounds["collector"], strict=True)
    ]
    each = ", ".join(f"{r:.3f}" for r in paired)
    return f"{statistics.median(paired):.3f}  ({note}; rounds: {each})"


def _counts(text: str) -> list[int]:
    """`32,64` as [32, 64]."""
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    """Dispatch: the whole benchmark, or one of its helper processes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collector")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-kafka", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lean", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="single", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.5, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=7, help=argparse.SUPPRESS)
    parser.add_argument(
        "--concurrency",
        type=_counts,
        default=[32, 64],
        help="closed-loop connections of the single-event comparison; each of a comma-separated "
        "list is measured (default 32,64)",
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced rate, requests/s")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="server under test on the first CPU; broker, PostgreSQL and load on the others",
    )
    args = parser.parse_args(argv)
    if args.load:
        return load_main(args)
    if args.bare:
        return bare_main(args)
    if args.no_kafka:
        return no_kafka_main()
    return main_run(args)


if __name__ == "__main__":
    sys.exit(main())

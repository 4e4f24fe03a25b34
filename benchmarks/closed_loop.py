"""Closed-loop benchmark: `python -m benchmarks.closed_loop`.

The real pipeline, each service its own process as in production: `cxloop collector`,
`cxloop enricher` and `cxloop closed-loop` on an embedded broker and PostgreSQL. Feedback is
posted to the collector at a fixed rate (default 500 events/s, 20% detractors, each detractor a
new customer so it opens a case). For each detractor the clock starts when the collector
answers 202 and stops when its `case.opened` Standard Webhook arrives (verified with the
`standardwebhooks` package) at a receiver in this process; p50/p90/p99/max are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from benchmarks.procfs import cpu_seconds
from cxruntime import apikeys
from cxruntime.db import make_engine, make_sessionmaker
from cxruntime.embedded import EmbeddedKafka, EmbeddedPostgres, free_port
from cxruntime.kafka import ensure_topics
from cxruntime.migrations import migrate
from cxruntime.probes import wait_for_http

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
COMMENTS_BAD = [
    "Die Lieferung kam drei Tage zu spät.",
    "Paket beschädigt, niemand meldet sich.",
    "The courier left the parcel in the rain.",
    "Refund still missing after two weeks.",
]
COMMENTS_GOOD = ["Alles bestens, danke!", "Fast delivery, great packaging.", "Gerne wieder."]


class Arrivals:
    """Webhook arrivals by feedback id, stamped with the monotonic clock on receipt."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.stages: dict[str, tuple[float, float, float]] = {}
        self.rejected = 0
        self.lock = threading.Lock()
        self.verifier = Webhook(SECRET)

    def handle(self, headers: dict[str, str], data: bytes) -> int:
        now = time.monotonic()
        try:
            body = self.verifier.verify(data, headers)
        except Exception:
            with self.lock:
                self.rejected += 1
            return 401
        if body.get("type") == "case.opened":
            feedback = body["data"].get("feedback", {})
            feedback_id = feedback.get("id")
            stages = _stages(body["data"], time.time())
            with self.lock:
                self.at.setdefault(feedback_id, now)
                if stages is not None:
                    self.stages.setdefault(feedback_id, stages)
        return 204


def _stages(data: dict[str, Any], arrived: float) -> tuple[float, float, float] | None:
    """Wall-clock stage durations (s): collector -> enricher, -> case opened, -> arrival."""
    feedback = data.get("feedback", {})
    try:
        received = datetime.fromisoformat(feedback["received_at"]).timestamp()
        enriched = datetime.fromisoformat(feedback["enriched_at"]).timestamp()
        opened = datetime.fromisoformat(data["opened_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None
    return enriched - received, opened - enriched, arrived - opened


class Receiver:
    """A minimal HTTP/1.1 keep-alive server on its own asyncio loop in a thread: one thread
    for all connections, so a hundred open keep-alive connections cost no thread switching."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=1024)
        )
        started.set()
        self.loop.run_forever()
        server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self.arrivals.handle(headers, body)
                reason = "No Content" if status == 204 else "Unauthorized"
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def cxloop() -> str:
    return str(Path(sys.executable).with_name("cxloop"))


async def make_key(database_url: str) -> str:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            _, key = await apikeys.create_key(session, name="bench", scopes=["ingest"])
        return key
    finally:
        await engine.dispose()


def event(rng: random.Random, detractor: bool) -> dict[str, Any]:
    if detractor:
        customer = f"bench-{uuid.uuid4().hex[:12]}"
        nps = rng.randint(0, 6)
        comment = rng.choice(COMMENTS_BAD)
    else:
        customer = f"happy-{rng.randint(0, 5000)}"
        nps = rng.randint(7, 10)
        comment = rng.choice(COMMENTS_GOOD)
    return {
        "id": uuid.uuid4().hex,
        "channel": rng.choice(["web", "app", "email", "contact_centre"]),
        "customer": {"id": customer, "segment": "standard", "region": "DE-BY"},
        "scores": {"nps": nps},
        "comment": comment,
        "touchpoint": "delivery",
    }


class Connection:
    """One HTTP/1.1 keep-alive connection sending requests one after another (a cheap client)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return int(head[9:12])


def request_bytes(body: bytes, key: str) -> bytes:
    """A complete keep-alive POST /v1/feedback."""
    head = (
        "POST /v1/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-API-Key: {key}\r\n\r\n"
    )
    return head.encode() + body


async def load(
    port: int, key: str, *, rate: float, seconds: float, share: float, seed: int
) -> dict[str, Any]:
    """Post at a fixed offered rate. Returns the 202 time of each detractor (CLOCK_MONOTONIC,
    which is system-wide, so the receiver process can compare), statuses, the rate achieved."""
    rng = random.Random(seed)
    total = int(rate * seconds)
    flags = [rng.random() < share for _ in range(total)]
    bodies = [event(rng, flag) for flag in flags]
    raws = [request_bytes(orjson.dumps(body), key) for body in bodies]
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pool.put_nowait(Connection(reader, writer))
    accepted_at: dict[str, float] = {}
    statuses: dict[int, int] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int) -> None:
        connection = await pool.get()
        try:
            status = await connection.send(raws[index])
        finally:
            pool.put_nowait(connection)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 202 and flags[index]:
            accepted_at[bodies[index]["id"]] = time.monotonic()

    start = time.monotonic() + 0.05
    for index in range(total):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_by = time.monotonic()
    await asyncio.gather(*tasks)
    return {
        "accepted_at": accepted_at,
        "statuses": statuses,
        "offered_per_s": total / max(1e-9, sent_by - start),
        "wall_s": time.monotonic() - start,
    }


def run_load(port: int, key: str, work: Path, **options: Any) -> dict[str, Any]:
    """The load generator in its own process: it shares no event loop or GIL with the receiver."""
    out = work / f"load-{uuid.uuid4().hex[:6]}.json"
    command = [sys.executable, "-m", "benchmarks.closed_loop", "--load-port", str(port)]
    command += ["--key", key, "--out", str(out)]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    subprocess.run(command, check=True)
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def print_service_figures(url: str, pid: int) -> None:
    """The closed-loop process's CPU time and mean delivery attempt, from /proc and /metrics."""
    cpu_s = cpu_seconds(pid)
    values: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        for name in (
            "cx_closed_loop_delivery_seconds_sum",
            "cx_closed_loop_delivery_seconds_count",
        ):
            if line.startswith(name + "{"):
                values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    count = values.get("cx_closed_loop_delivery_seconds_count", 0.0)
    mean_ms = 1000 * values.get("cx_closed_loop_delivery_seconds_sum", 0.0) / max(1.0, count)
    print(
        f"closed-loop process: {cpu_s:.1f} s CPU in all (start-up included); "
        f"{count:.0f} delivery attempts ({values.get('retries', 0):.0f} retried), "
        f"mean {mean_ms:.1f} ms each"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.closed_loop")
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to post")
    parser.add_argument("--detractors", type=float, default=0.2, help="share of detractors")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the rate first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load-port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_port is not None:
        result = asyncio.run(
            load(
                args.load_port,
                args.key,
                rate=args.rate,
                seconds=args.seconds,
                share=args.detractors,
                seed=args.seed,
            )
        )
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS))
        return 0

    work = Path(tempfile.mkdtemp(prefix="cxbench-closed-loop-"))
    os.chmod(work, 0o755)  # the embedded PostgreSQL runs as another user
    arrivals = Arrivals()
    receiver = Receiver(arrivals)
    hook_url = receiver.url
    kafka = EmbeddedKafka(log_path=work / "tansu.log")
    postgres = EmbeddedPostgres(work / "pg")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        kafka.start()
        postgres.start()
        database_url = postgres.create_database("bench")
        migrate(database_url)
        asyncio.run(ensure_topics(kafka.bootstrap, partitions=3))
        key = asyncio.run(make_key(database_url))
        ports = {name: free_port() for name in ("collector", "enricher", "closed-loop")}
        env = {k: v for k, v in os.environ.items() if not k.startswith("CX_")}
        env.update(
            {
                "CX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
                "CX_DATABASE_URL": database_url,
                "CX_DATA_DIR": str(work / "data"),
                "CX_CLOSED_LOOP_WEBHOOK_URL": hook_url,
                "CX_CLOSED_LOOP_WEBHOOK_SECRET": SECRET,
                "CX_LOG_LEVEL": "WARNING",
                "CX_COLLECTOR_PORT": str(ports["collector"]),
                "CX_ENRICHER_PORT": str(ports["enricher"]),
                "CX_CLOSED_LOOP_PORT": str(ports["closed-loop"]),
            }
        )
        for name in ports:
            log = (work / f"{name}.log").open("ab")
            processes.append(subprocess.Popen([cxloop(), name], env=env, stdout=log, stderr=log))
        for port, process in zip(ports.values(), processes, strict=True):
            wait_for_http(f"http://127.0.0.1:{port}/readyz", process=process)
        time.sleep(6)  # let the consumer groups settle
        options = {"rate": args.rate, "detractors": args.detractors}
        run_load(ports["collector"], key, work, seconds=args.warmup, seed=args.seed + 1, **options)
        time.sleep(3)
        with arrivals.lock:
            arrivals.at.clear()
            arrivals.stages.clear()
        result = run_load(
            ports["collector"], key, work, seconds=args.seconds, seed=args.seed, **options
        )
        accepted_at: dict[str, float] = result["accepted_at"]
        statuses = {int(k): v for k, v in result["statuses"].items()}
        ok = statuses.get(202, 0)
        failed = sum(statuses.values()) - ok
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with arrivals.lock:
                if all(i in arrivals.at for i in accepted_at):
                    break
            time.sleep(0.1)
        with arrivals.lock:
            latencies = [arrivals.at[i] - t for i, t in accepted_at.items() if i in arrivals.at]
            missing = sum(1 for i in accepted_at if i not in arrivals.at)
        print(
            f"posted {ok + failed} events, offered {result['offered_per_s']:.0f}/s "
            f"(target {args.rate:.0f}/s), all answered after {result['wall_s']:.1f}s; "
            f"HTTP statuses {statuses}"
        )
        print(
            f"detractors accepted: {len(accepted_at)}, webhooks received: {len(latencies)}, "
            f"missing after 30 s: {missing}, rejected signatures: {arrivals.rejected}"
        )
        if latencies:
            ms = [x * 1000 for x in latencies]
            print(
                "202 -> case.opened webhook (ms): "
                f"p50 {percentile(ms, 0.50):.0f}  p90 {percentile(ms, 0.90):.0f}  "
                f"p99 {percentile(ms, 0.99):.0f}  max {max(ms):.0f}  "
                f"mean {statistics.fmean(ms):.0f}"
            )
            print(f"target p99 < 1000 ms: {'met' if percentile(ms, 0.99) < 1000 else 'NOT met'}")
        with arrivals.lock:
            stages = [arrivals.stages[i] for i in accepted_at if i in arrivals.stages]
        if stages:
            names = ("collector->enriched", "enriched->case opened", "case opened->webhook")
            for index, name in enumerate(names):
                values = [s[index] * 1000 for s in stages]
                print(
                    f"  stage {name:<24} p50 {percentile(values, 0.5):6.0f} ms  "
                    f"p99 {percentile(values, 0.99):6.0f} ms"
                )
        print_service_figures(f"http://127.0.0.1:{ports['closed-loop']}", processes[2].pid)
        return 0 if latencies and missing == 0 else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        receiver.stop()
        kafka.stop()
        postgres.stop()
        print(f"logs in {work}")


if __name__ == "__main__":
    sys.exit(main())

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from cxruntime import apikeys
from cxruntime.db import make_engine, make_sessionmaker
from cxruntime.embedded import EmbeddedKafka, EmbeddedPostgres, free_port
from cxruntime.kafka import ensure_topics
from cxruntime.migrations import migrate

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


def start_receiver(arrivals: Arrivals) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = arrivals.handle({k.lower(): v for k, v in self.headers.items()}, data)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}/hooks"


def cxloop() -> str:
    return str(Path(sys.executable).with_name("cxloop"))


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready in {timeout_s}s")


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


async def load(
    collector: str, key: str, *, rate: float, seconds: float, share: float, seed: int
) -> tuple[dict[str, float], int, int, float]:
    """Post at `rate`/s; returns {detractor id: time of its 202}, accepted, failed, wall time."""
    rng = random.Random(seed)
    total = int(rate * seconds)
    accepted_at: dict[str, float] = {}
    counts = {"ok": 0, "failed": 0}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=collector, limits=limits, timeout=10) as client:

        async def post(body: dict[str, Any], detractor: bool) -> None:
            try:
                response = await client.post(
                    "/v1/feedback", content=orjson.dumps(body), headers=headers
                )
            except httpx.HTTPError:
                counts["failed"] += 1
                return
            if response.status_code == 202:
                counts["ok"] += 1
                if detractor:
                    accepted_at[body["id"]] = time.monotonic()
            else:
                counts["failed"] += 1

        tasks = []
        start = time.monotonic()
        for i in range(total):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            detractor = rng.random() < share
            tasks.append(asyncio.create_task(post(event(rng, detractor), detractor)))
        await asyncio.gather(*tasks)
        wall = time.monotonic() - start
    return accepted_at, counts["ok"], counts["failed"], wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.closed_loop")
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to post")
    parser.add_argument("--detractors", type=float, default=0.2, help="share of detractors")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the rate first")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cxbench-closed-loop-"))
    os.chmod(work, 0o755)  # the embedded PostgreSQL runs as another user
    arrivals = Arrivals()
    receiver, hook_url = start_receiver(arrivals)
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
            wait_ready(f"http://127.0.0.1:{port}", process)
        collector = f"http://127.0.0.1:{ports['collector']}"
        # Let the consumer groups settle, then warm up at the target rate.
        time.sleep(6)
        asyncio.run(
            load(
                collector,
                key,
                rate=args.rate,
                seconds=args.warmup,
                share=args.detractors,
                seed=args.seed + 1,
            )
        )
        time.sleep(3)
        with arrivals.lock:
            arrivals.at.clear()
        accepted_at, ok, failed, wall = asyncio.run(
            load(
                collector,
                key,
                rate=args.rate,
                seconds=args.seconds,
                share=args.detractors,
                seed=args.seed,
            )
        )
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
            f"posted {ok + failed} events in {wall:.1f}s ({(ok + failed) / wall:.0f}/s offered "
            f"target {args.rate:.0f}/s), accepted {ok}, failed {failed}"
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
        return 0 if latencies and missing == 0 else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        receiver.shutdown()
        kafka.stop()
        postgres.stop()
        print(f"logs in {work}")


if __name__ == "__main__":
    sys.exit(main())

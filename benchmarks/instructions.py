"""Instructions per event through the collector's ingest path (or, with `--enricher`, the
enricher's record path), counted by valgrind (callgrind).

The wall-clock benchmark (`benchmarks.collector`) moves by tens of percent from minute to minute
on a shared host; an instruction count does not, so a change of a few percent on the hot path
shows, and two builds can be compared one after the other:

    python -m benchmarks.instructions                    # this checkout
    python -m benchmarks.instructions --source ../other  # another checkout, with this venv

What is counted: the collector's ASGI app in-process, from the request scope to the answer, for
`POST /v1/feedback/batch` (500 events a request, 4 requests in flight) and `POST /v1/feedback`
(32 in flight): authentication (a cached key), rate limit, validation, the accepted event and
its record, the publisher, the framer and aiokafka's batch builder, with a producer that encodes
every batch and acknowledges it at once. Not counted: uvicorn's HTTP parsing, the sockets, the
broker. The same single-event load is counted against the wall-clock benchmark's like-for-like
baseline, `bare-lean` (the same validation and record on the collector's route class, no auth,
no Kafka), and the two give an in-process like-for-like ratio. The figure is the difference
between a run of 3 and of 1 measured repetitions, divided by the events of the 2 extra ones, so
start-up and imports cancel out. Needs `valgrind`; a run takes about 3.5 minutes.

`--enricher` counts the enricher's work per raw record the same way (about 3 minutes): the
records of `benchmarks.enricher`'s mix (fixed ids and times) decoded, enriched and turned into
output records by `EnrichProcessor`, in batches of 500; not counted: aiokafka, the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

SECRET = "cxk_bench_instructions"
EVENTS_PER_BATCH = 500
KINDS = {"batch": (4, 8), "single": (32, 800), "bare-lean": (32, 800)}
"""kind: (requests in flight, requests per repetition). `bare-lean` is the wall-clock
benchmark's like-for-like baseline (`benchmarks.collector.bare_app(lean=True)`: the same
validation and record on the collector's route class, no auth, no Kafka) under the load of
`single`."""
MAX_REPETITIONS = 3
SOURCE_DIRS = ("libs/cxschema", "libs/cxruntime", "services/collector", "services/enricher")
ENRICHER_EVENTS = 2_000
"""Raw records per repetition of `--enricher`: the mix of `benchmarks.enricher`, with fixed ids
and times so that every run enriches the same bytes."""


async def drive_enricher(repetitions: int) -> None:
    """Decode, enrich and turn into output records `repetitions` + 1 rounds of raw records, in
    batches of 500 as the consumer runner hands them over (the first round warms up)."""
    from benchmarks.enricher import default_enricher, raw_events
    from cxloop_enricher.processor import EnrichProcessor
    from cxruntime.consumer import Consumed, Decoded
    from cxschema import RAW, TYPE_SUBMITTED, ce_headers, encode, record_key

    moment = datetime(2026, 11, 25, tzinfo=UTC)
    events = [
        event.model_copy(update={"id": f"bench-{i}", "occurred_at": moment, "received_at": moment})
        for i, event in enumerate(raw_events(ENRICHER_EVENTS, seed=5))
    ]
    records = [
        Consumed(
            RAW, i % 6, i, record_key(e), encode(e), tuple(ce_headers(e, ce_type=TYPE_SUBMITTED)), 0
        )
        for i, e in enumerate(events)
    ]
    processor = EnrichProcessor(default_enricher(None), clock=lambda: moment)
    produced = 0
    for _ in range(repetitions + 1):
        for start in range(0, len(records), 500):
            batch = [Decoded(r, processor.decode(r)) for r in records[start : start + 500]]
            produced += len(await processor.handle(batch, {}))
    if produced != ENRICHER_EVENTS * (repetitions + 1):
        raise SystemExit(
            f"{produced} records produced, expected {ENRICHER_EVENTS * (repetitions + 1)}"
        )


async def drive(kind: str, repetitions: int) -> None:
    """Serve `repetitions` + 1 rounds of requests to the app of `kind` (the first warms up)."""
    if kind == "enricher":
        await drive_enricher(repetitions)
        return
    if kind == "bare-lean":
        from benchmarks.collector import bare_app

        await serve_rounds(bare_app(lean=True), kind, repetitions)
        return
    await serve_rounds(collector_app(), kind, repetitions)


def collector_app() -> Any:
    """The collector's app with a cached key, no rate limit, and a producer that encodes each
    batch and acknowledges it at once."""
    from aiokafka.producer.message_accumulator import BatchBuilder
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from cxloop_collector import main as collector_main
    from cxloop_collector.gate import Gate
    from cxloop_collector.keys import CoalescingAuthenticator
    from cxloop_collector.publisher import Publisher
    from cxloop_collector.ratelimit import RateLimiter
    from cxloop_collector.settings import CollectorSettings
    from cxruntime.apikeys import ApiKey

    key = ApiKey(
        key_id="bench",
        name="bench",
        scopes=frozenset({"ingest"}),
        channels=frozenset(),
        origins=frozenset(),
        team=None,
        publishable=False,
    )

    class Keys(CoalescingAuthenticator):
        async def resolve(self, presented: str) -> ApiKey | None:
            return key if presented == SECRET else None

    class Producer:
        """Encodes each batch as the real producer would and acknowledges it at once."""

        def create_batch(self) -> BatchBuilder:
            return BatchBuilder(256 * 1024, 0)

        async def partitions_for(self, topic: str) -> set[int]:
            return {0, 1, 2}

        async def send_batch(
            self, builder: BatchBuilder, topic: str, *, partition: int
        ) -> asyncio.Future[None]:
            builder._build()
            delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            delivered.get_loop().call_soon(delivered.set_result, None)
            return delivered

    app = collector_main.create_app(CollectorSettings())
    keys = Keys(async_sessionmaker(), ttl_s=1e9)
    # A long produce timeout: under valgrind a batch takes seconds.
    publisher = Publisher(timeout_s=600.0, max_in_flight=10**6, memo_size=100_000)
    publisher.attach(Producer(), linger_s=0.005, group_commit=True)
    app.state.authenticator = keys
    app.state.gate = Gate(
        publisher=publisher,
        limiter=RateLimiter(rate_per_s=1e9, burst=10**9),
        authenticator=keys,
    )
    return app


async def serve_rounds(app: Any, kind: str, repetitions: int) -> None:
    """Post the rounds of `kind` to the ASGI `app`, `KINDS[kind]` requests in flight."""
    from benchmarks.collector import make_events
    from cxruntime.serve import settle_garbage_collector

    concurrency, per_round = KINDS[kind]
    path = "/v1/feedback/batch" if kind == "batch" else "/v1/feedback"

    def bodies_of_round(seed: int) -> list[bytes]:
        # Every round posts other events (mostly other customers, so the partitioner's cache of
        # key hashes hits about as often as with real traffic, not always).
        if kind != "batch":
            return [orjson.dumps(event) for event in make_events(per_round, seed=seed)]
        events = make_events(EVENTS_PER_BATCH * per_round, seed=seed)
        return [
            orjson.dumps({"events": events[i : i + EVENTS_PER_BATCH]})
            for i in range(0, len(events), EVENTS_PER_BATCH)
        ]

    statuses: dict[int, int] = {}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    async def post(body: bytes) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-api-key", SECRET.encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> MutableMapping[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)  # a disconnect never comes while the request runs
            return {"type": "http.disconnect"}

        await app(scope, receive, send)

    # Built for the most repetitions whatever this run does: the set-up then costs the same
    # in both counted runs and cancels out.
    rounds = [bodies_of_round(seed) for seed in range(MAX_REPETITIONS + 1)]

    async def one_round(seed: int) -> None:
        queue = list(reversed(rounds[seed]))

        async def worker() -> None:
            while queue:
                await post(queue.pop())

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    await one_round(0)
    settle_garbage_collector()
    for seed in range(1, repetitions + 1):
        await one_round(seed)
    expected = {200 if kind == "batch" else 202: per_round * (repetitions + 1)}
    if statuses != expected:
        raise SystemExit(f"unexpected answers {statuses}, expected {expected}")


def count(kind: str, repetitions: int, source: Path, work: Path) -> int:
    """Instructions of a whole `--drive` run under callgrind."""
    out = work / f"{kind}.{repetitions}.callgrind"
    python_path = [str(source / part) for part in SOURCE_DIRS] + [str(source)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONHASHSEED": "0",
        "CX_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "CX_DATABASE_URL": "postgresql+asyncpg://bench@127.0.0.1:1/bench",
        "CX_DATA_DIR": str(work / "data"),
    }
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        # This file drives, the source's packages serve (another checkout may not have this file).
        str(Path(__file__).resolve()),
        "--drive",
        kind,
        "--repetitions",
        str(repetitions),
    ]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, cwd=source)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out}")


def count_enricher(source: Path) -> int:
    """Print the instructions per event of the enricher's record path in `source`."""
    print(f"instructions per event, enricher record path in-process, source {source}")
    with tempfile.TemporaryDirectory(prefix="cxinstr-") as tmp, ThreadPoolExecutor(2) as executor:
        short = executor.submit(count, "enricher", 1, source, Path(tmp))
        full = executor.submit(count, "enricher", MAX_REPETITIONS, source, Path(tmp))
        extra = full.result() - short.result()
    events = (MAX_REPETITIONS - 1) * ENRICHER_EVENTS
    print(
        f"  enricher {extra / events:9,.0f} instructions per event (decode, PII, touchpoint, "
        f"language, sentiment, enriched event, output record; {events:,} events counted)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Count, or (`--drive`) be the process that is counted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument(
        "--source",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="checkout to measure (default: this one)",
    )
    parser.add_argument(
        "--enricher",
        action="store_true",
        help=f"count the enricher's record path instead: {ENRICHER_EVENTS:,} raw records "
        "decoded, enriched and made output records (no Kafka), per event",
    )
    parser.add_argument("--drive", choices=[*sorted(KINDS), "enricher"], help=argparse.SUPPRESS)
    parser.add_argument("--repetitions", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        asyncio.run(drive(args.drive, args.repetitions))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed; this benchmark counts instructions with it")
        return 2
    source = args.source.resolve()
    if args.enricher:
        return count_enricher(source)
    print(f"instructions per event, collector app in-process, source {source}")
    with tempfile.TemporaryDirectory(prefix="cxinstr-") as tmp:
        work = Path(tmp)
        figures: dict[str, float] = {}
        for kind, (concurrency, per_round) in KINDS.items():
            events = per_round * (EVENTS_PER_BATCH if kind == "batch" else 1)
            # The two runs side by side: two cores halve the wait, and counts do not mind.
            with ThreadPoolExecutor(max_workers=2) as executor:
                short = executor.submit(count, kind, 1, source, work)
                full = executor.submit(count, kind, MAX_REPETITIONS, source, work)
                extra = full.result() - short.result()
            figures[kind] = per_event = extra / ((MAX_REPETITIONS - 1) * events)
            print(
                f"  {kind:<9} {per_event:9,.0f} instructions per event "
                f"({concurrency} requests in flight, {(MAX_REPETITIONS - 1) * events:,} events "
                "counted)"
            )
        print(
            f"  like for like: bare-lean / single {figures['bare-lean'] / figures['single']:.3f} "
            "(in-process; the wall-clock ratio adds uvicorn, the sockets and the broker)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

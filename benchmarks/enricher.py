"""Enricher benchmark: `python -m benchmarks.enricher`.

1. The sentiment tagger on one core: `SentimentAnalyzer.analyze` called in a loop over realistic
   German and English feedback comments (language given), in comments/s; and the whole per-event
   enrichment (PII redaction, touchpoint rules, language detection, sentiment, building the
   enriched event) the same way, in events/s.
2. One `cxloop enricher` process on the embedded broker: N raw events are written first, then the
   process is started; the rate is measured from the moment its group commits the first offsets
   to the moment the committed offsets cover all N (consume, enrich, produce with acks=all, commit),
   so start-up and the group join are not counted, and the last commit interval (1 s) is.
   Three runs by default (`--runs`), each on a fresh broker; the median is judged against the
   target, because one run's rate moves by a quarter from minute to minute on a shared host.
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
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.procfs import cpu_seconds
from benchmarks.topics import fill_topic
from cxloop_enricher.enrich import Enricher
from cxloop_enricher.language import detect_language
from cxloop_enricher.pii import Redaction, Redactor
from cxloop_enricher.sentiment import SentimentAnalyzer, SentimentResult
from cxloop_enricher.sentiment.model import LinearModel
from cxloop_enricher.taxonomy import load_taxonomy
from cxloop_enricher.touchpoints import TouchpointTagger
from cxruntime.embedded import EmbeddedKafka, free_port
from cxruntime.kafka import ensure_topics
from cxschema import ENRICHED, RAW, TYPE_SUBMITTED, FeedbackReceived, ce_headers, encode, record_key

GROUP = "cxloop-enricher"
T = TypeVar("T")

DE = [
    "Die Lieferung kam drei Tage zu spät und niemand hat sich gemeldet.",
    "Super schnelle Lieferung, alles bestens verpackt. Gerne wieder!",
    "Der Kundenservice war sehr freundlich, aber das Problem ist immer noch nicht gelöst.",
    "Paket kam beschädigt an, die Rücksendung war dafür unkompliziert.",
    "Nicht schlecht, aber auch nicht gut. Preis ist okay.",
    "Die App stürzt ständig ab, wenn ich bezahlen will. Sehr ärgerlich!!",
    "Rechnung doppelt abgebucht, bitte um Erstattung. Erreichbar unter 0171 1234567.",
    "Top Qualität, schnelle Lieferung 👍",
    "Warum dauert die Erstattung so lange? Ich warte seit zwei Wochen.",
    "Bestellung 4711 ist nie angekommen. Die Hotline war dauernd besetzt.",
    "Alles gut.",
    "Leider ausverkauft, schade.",
]
EN = [
    "The delivery was late again and nobody answered my emails.",
    "Great service, the agent solved my problem in five minutes!",
    "Not bad at all, but the checkout is confusing.",
    "The app keeps crashing when I try to log in. Terrible.",
    "I was charged twice, please refund me. Contact me at jane.doe@example.com",
    "Love the product, fast shipping 😍",
    "Quality is ok but way too expensive for what you get.",
    "Still waiting for my refund after three weeks, really disappointed.",
    "Easy return, friendly staff.",
    "Where is my parcel? Tracking has not updated for days.",
]


def comments(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """n (text, language) pairs: one or two sentences each, German and English mixed 60/40."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        language, pool = ("de", DE) if rng.random() < 0.6 else ("en", EN)
        parts = rng.sample(pool, k=rng.choice((1, 1, 2)))
        out.append((" ".join(parts), language))
    return out


def raw_events(n: int, seed: int = 11) -> list[FeedbackReceived]:
    """n raw events as the collector writes them; a quarter without a comment."""
    rng = random.Random(seed)
    texts = comments(n, seed)
    now = datetime.now(UTC)
    events = []
    for i, (text, language) in enumerate(texts):
        channel = rng.choice(("web", "app", "email", "contact_centre"))
        context: dict[str, str] = {}
        if channel == "web":
            context["url"] = rng.choice(("https://shop.example/checkout", "https://shop.example/"))
        elif channel == "contact_centre":
            context["ivr_queue"] = rng.choice(("billing", "orders", "general"))
        events.append(
            FeedbackReceived.model_validate(
                {
                    "id": str(uuid.uuid4()),
                    "occurred_at": now,
                    "received_at": now,
                    "source": "bench",
                    "channel": channel,
                    "customer": {"id": f"crm-{i % 5000}", "region": "DE-BY"},
                    "scores": {"nps": rng.randint(0, 10)},
                    "comment": text if i % 4 else None,
                    "language": language if i % 3 == 0 else None,
                    "context": context,
                }
            )
        )
    return events


def default_enricher(model: Path | None) -> Enricher:
    taxonomy = load_taxonomy(None)
    analyzer = SentimentAnalyzer.load(model) if model else SentimentAnalyzer.default()
    return Enricher(
        tagger=TouchpointTagger(taxonomy),
        redactor=Redactor(taxonomy.pii_patterns),
        analyzer=analyzer,
        detect_language=detect_language,
    )


def _cpu_rate(items: Sequence[T], step: Callable[[T], object]) -> float:
    """Items per CPU-second of this process (time descheduled by other jobs is not counted)."""
    for item in items[:200]:
        step(item)
    started = time.process_time()
    for item in items:
        step(item)
    return len(items) / (time.process_time() - started)


class _Stub:
    """Stands in for one enrichment step, answering at once."""

    batches = False

    def __init__(self, answer: Callable[..., Any]) -> None:
        self.analyze = answer
        self.tag = answer

    def prepare(self, texts: Sequence[str]) -> None:
        """Nothing to do ahead (`batches` is False)."""


class _NoRedaction:
    def redact(self, text: str) -> Redaction:
        return Redaction(text, {})

    def redact_emails(self, text: str) -> Redaction:
        return Redaction(text, {})


def bench_tagger(n: int, model: Path | None) -> tuple[float, float, dict[str, float]]:
    """comments/s of the analyzer alone and events/s of the whole enrichment, one core, and
    the CPU µs per event of each enrichment step."""
    enricher = default_enricher(model)
    texts = comments(n)
    tagger_rate = _cpu_rate(texts, lambda t: enricher.analyzer.analyze(t[0], t[1]))
    events = raw_events(n)
    now = datetime.now(UTC)
    enrich_rate = _cpu_rate(events, lambda e: enricher.enrich(e, now=now))

    # The cost of a step is what the enrichment saves when that step is replaced by a stub
    # (measured in context: steps run alone look cheaper, their caches stay warm).
    neutral = SentimentResult("neutral", 0.0)
    fixed = enricher.tagger.tag(events[0])
    variants = {
        "sentiment": Enricher(
            tagger=enricher.tagger,
            redactor=enricher.redactor,
            analyzer=_Stub(lambda text, language: neutral),
            detect_language=enricher.detect_language,
        )
    }
    variants["language detection"] = Enricher(
        tagger=enricher.tagger,
        redactor=enricher.redactor,
        analyzer=variants["sentiment"].analyzer,
        detect_language=lambda text, hint: "de",
    )
    variants["touchpoint rules"] = Enricher(
        tagger=_Stub(lambda event, **_: fixed),  # type: ignore[arg-type]
        redactor=enricher.redactor,
        analyzer=variants["sentiment"].analyzer,
        detect_language=lambda text, hint: "de",
    )
    variants["PII redaction"] = Enricher(
        tagger=variants["touchpoint rules"].tagger,
        redactor=_NoRedaction(),  # type: ignore[arg-type]
        analyzer=variants["sentiment"].analyzer,
        detect_language=lambda text, hint: "de",
    )
    steps: dict[str, float] = {}
    previous = 1 / enrich_rate
    for step, variant in variants.items():
        cost = 1 / _cpu_rate(events, lambda e, v=variant: v.enrich(e, now=now))  # type: ignore[misc]
        steps[step] = max(0.0, previous - cost)
        previous = cost
    steps["the rest (event model, copying)"] = previous
    return tagger_rate, enrich_rate, {k: v * 1e6 for k, v in steps.items()}


async def _committed(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    """Offsets the enricher's group committed on the raw topic, summed (OffsetFetch)."""
    total = 0
    for tp in partitions:
        offset = await consumer.committed(tp)
        total += max(0, offset or 0)
    return total


async def _enriched_ids(bootstrap: str, expect: int) -> int:
    """Distinct (ce_source, ce_id) on the enriched topic, read from the beginning.

    Read rather than taken from the end offsets, which the embedded broker reports short of the
    last batch.
    """
    consumer = AIOKafkaConsumer(
        ENRICHED,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[tuple[str | None, str | None]] = set()
    try:
        idle_until = time.monotonic() + 10
        while len(seen) < expect and time.monotonic() < idle_until:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for messages in batches.values():
                if messages:
                    idle_until = time.monotonic() + 10
                for m in messages:
                    headers = dict(m.headers)
                    source, ce_id = headers.get("ce_source"), headers.get("ce_id")
                    seen.add(
                        (source.decode() if source else None, ce_id.decode() if ce_id else None)
                    )
        return len(seen)
    finally:
        await consumer.stop()


async def _measure(
    bootstrap: str, total: int, partitions: int, process: subprocess.Popen[bytes]
) -> tuple[float, float]:
    """events/s (wall clock) and CPU microseconds per event of the enricher process."""
    # Not subscribed, so it never joins the group: it only reads the group's commits.
    observer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False
    )
    await observer.start()
    raw = [TopicPartition(RAW, p) for p in range(partitions)]
    try:
        first: tuple[float, int, float] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the enricher exited with {process.returncode}")
            done = await _committed(observer, raw)
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done, cpu_seconds(process.pid))
            if done >= total:
                assert first is not None
                cpu = cpu_seconds(process.pid) - first[2]
                return (total - first[1]) / (now - first[0]), cpu * 1e6 / (total - first[1])
            await asyncio.sleep(0.05)
        raise TimeoutError("the enricher did not finish in 600 s")
    finally:
        await observer.stop()


def bench_process(n: int, partitions: int, model: Path | None) -> tuple[float, float, int]:
    """events/s through one `cxloop enricher` process, its CPU µs per event, events enriched."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedKafka(log_path=Path(tmp) / "tansu.log")
        broker.start()
        try:
            asyncio.run(ensure_topics(broker.bootstrap, partitions=partitions))
            records = [
                (record_key(e), encode(e), ce_headers(e, ce_type=TYPE_SUBMITTED))
                for e in raw_events(n)
            ]
            asyncio.run(fill_topic(broker.bootstrap, RAW, records))
            port = free_port()
            env = {
                **os.environ,
                "CX_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "CX_ENRICHER_PORT": str(port),
                "CX_DATA_DIR": str(Path(tmp) / "data"),
                "CX_LOG_LEVEL": "WARNING",
            }
            # The same tagger as the in-process part: --model, else the shipped one.
            env.pop("CX_ENRICHER_SENTIMENT_MODEL", None)
            if model is not None:
                env["CX_ENRICHER_SENTIMENT_MODEL"] = str(model.resolve())
            with (Path(tmp) / "enricher.log").open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "cxruntime", "enricher"],
                    env=env,
                    stdout=log,
                    stderr=log,
                )
                try:
                    rate, cpu_us = asyncio.run(_measure(broker.bootstrap, n, partitions, process))
                    written = asyncio.run(_enriched_ids(broker.bootstrap, n))
                    _ok(httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code)
                finally:
                    process.terminate()
                    process.wait(timeout=30)
            return rate, cpu_us, written
        finally:
            broker.stop()


def _ok(status: int) -> None:
    if status != 200:
        raise RuntimeError(f"/readyz answered {status}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.enricher")
    parser.add_argument("--comments", type=int, default=20_000, help="texts for the tagger loop")
    parser.add_argument("--events", type=int, default=50_000, help="events through the process")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="process runs (each on a fresh broker); the median is judged, as the rate of one "
        "run moves by a quarter on a shared host",
    )
    parser.add_argument("--model", type=Path, default=None, help="a trained sentiment model")
    args = parser.parse_args()
    if args.model is not None and LinearModel.load(args.model).config.embedding:
        print(
            "note: this model uses sentence embeddings, and the benchmark's comments come from a "
            f"pool of {len(DE) + len(EN)} sentences, which the encoder remembers after their "
            "first use: the figures below overstate its speed on new comments (see "
            "docs/sentiment.md, 'Measured', for those)"
        )

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (shared; figures vary with it)")
    tagger_rate, enrich_rate, steps = bench_tagger(args.comments, args.model)
    print(f"sentiment tagger ({'model' if args.model else 'default'}), one core (CPU time):")
    print(f"  {tagger_rate:>10,.0f} comments/s  ({args.comments:,} comments, de/en, 1-2 sentences)")
    print(f"  {enrich_rate:>10,.0f} events/s    whole enrichment (PII, rules, language, sentiment)")
    for step, micros in steps.items():
        print(f"  {micros:>10,.1f} µs/event  {step}")
    print(f"one `cxloop enricher` process on the embedded broker ({args.partitions} partitions):")
    runs = []
    for run in range(1, max(1, args.runs) + 1):
        rate, cpu_us, written = bench_process(args.events, args.partitions, args.model)
        runs.append((rate, cpu_us, written))
        print(
            f"  run {run}: {rate:>8,.0f} events/s, {cpu_us:,.0f} µs CPU per event, "
            f"{written:,} of {args.events:,} raw events enriched",
            flush=True,
        )
    rate = statistics.median(r for r, _, _ in runs)
    cpu_us = statistics.median(c for _, c, _ in runs)
    written = min(w for _, _, w in runs)
    print(f"  {rate:>10,.0f} events/s    consume, enrich, produce (acks=all), commit (median)")
    print(f"  {written:>10,} distinct events enriched of {args.events:,} raw events (fewest)")
    print(f"  {rate / enrich_rate:>10.0%} of the in-process enrichment rate measured above")
    print(
        f"  {cpu_us:>10,.0f} µs CPU per event in the enricher process, median "
        f"(= {1e6 / cpu_us:,.0f} events/s on a core of its own)"
    )
    target = 5000
    ok = tagger_rate >= target and rate >= target and written >= args.events
    print(f"targets (>= {target:,}/s each, nothing lost): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The consumer of `cx.feedback.enriched.v1`: counts each event once into the buckets.

`handle` runs one PostgreSQL transaction per batch that locks the partitions' offset rows,
skips records below the stored positions (a stale owner after a rebalance), inserts the event
uids not seen before, upserts the minute, hour, day and week buckets of those events and advances
the positions. Either all of that commits or none of it, so a kill -9 at any instant neither
loses nor double-counts: on restart the runner seeks to the stored positions.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiokafka import TopicPartition
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics import repository
from cxloop_metrics.buckets import EventBuckets, event_buckets, floor_minute
from cxloop_metrics.labels import LabelLimiter
from cxruntime.consumer import Consumed, Decoded, InvalidMessage, Positions, Produce
from cxschema import decode_enriched, feedback_uid

log = logging.getLogger(__name__)

RESPONSES = Counter(
    "cx_feedback_responses_total",
    "Feedback events counted into the KPIs, by channel and touchpoint (bounded).",
    ["channel", "touchpoint"],
)
EVENTS = Counter(
    "cx_metrics_events_total",
    "Enriched events seen by the metrics consumer, by outcome: counted, duplicate (uid seen "
    "before), replayed (below the stored position), late (past the lateness: no minute bucket).",
    ["outcome"],
)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the metrics need of one enriched event."""

    uid: str
    occurred_at: datetime
    buckets: EventBuckets
    touchpoint: str
    channel: str
    journey_stage: str
    region: str
    segment: str
    nps: int | None
    csat: int | None
    ces: int | None
    sentiment: float | None
    negative: bool


class BucketCache:
    """`event_buckets` memoised per UTC minute: a stream's events share a few minutes."""

    def __init__(self, tz: ZoneInfo, *, max_entries: int = 4096) -> None:
        self._tz = tz
        self._max_entries = max_entries
        self._cache: dict[datetime, EventBuckets] = {}

    def __call__(self, occurred_at: datetime) -> EventBuckets:
        minute = floor_minute(occurred_at)
        found = self._cache.get(minute)
        if found is None:
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            found = self._cache[minute] = event_buckets(minute, self._tz)
        return found


def observe(value: bytes | None, buckets: BucketCache) -> Observation:
    """Decode an enriched record into an `Observation`, or raise `InvalidMessage`."""
    if value is None:
        raise InvalidMessage("empty record value")
    try:
        event = decode_enriched(value)
    except ValidationError as exc:
        raise InvalidMessage(f"not a FeedbackEnriched event: {exc}") from exc
    commented = bool(event.comment)
    customer = event.customer
    return Observation(
        uid=feedback_uid(event.source, event.id),
        occurred_at=event.occurred_at,
        buckets=buckets(event.occurred_at),
        touchpoint=event.touchpoint,
        channel=event.channel,
        journey_stage=event.journey_stage,
        region=(customer.region or "") if customer else "",
        segment=(customer.segment or "") if customer else "",
        nps=event.scores.nps,
        csat=event.scores.csat,
        ces=event.scores.ces,
        sentiment=event.sentiment.score if commented else None,
        negative=commented and event.sentiment.label == "negative",
    )


def to_row(
    obs: Observation, *, now: datetime, lateness: timedelta, hour_retention: timedelta
) -> repository.EventRow:
    """The bucket row of an observation: too-late events skip the minute buckets."""
    b = obs.buckets
    return repository.EventRow(
        uid=obs.uid,
        minute=b.minute if obs.occurred_at >= now - lateness else None,
        hour=b.hour if b.hour >= now - hour_retention else None,
        day=b.day,
        week=b.week,
        touchpoint=obs.touchpoint,
        channel=obs.channel,
        journey_stage=obs.journey_stage,
        region=obs.region,
        segment=obs.segment,
        nps=obs.nps,
        csat=obs.csat,
        ces=obs.ces,
        sentiment=obs.sentiment,
        negative=obs.negative,
    )


@dataclass(frozen=True, slots=True)
class _Pending:
    """A batch ready for the database: its rows by record and the positions after it."""

    records: list[tuple[str, int, int, repository.EventRow]]
    positions: dict[tuple[str, int], int]
    now: datetime


class WriterFailed(RuntimeError):
    """The bucket writer gave up; the process must restart from the stored positions."""


class MetricsProcessor:
    """`Processor` and `OffsetStore` of the metrics consumer, and its pipelined bucket writer.

    Run alone, `handle` writes each batch before it returns. When `run()` is running as a
    worker beside the consumer, `handle` only queues the batch (at most one waits) and the
    writer commits it while the consumer decodes the next one, so decoding and the database
    work overlap. Each transaction still holds the buckets and the positions together, and the
    stored positions are authoritative: the runner's Kafka commit may run ahead of them, and a
    crash then costs a re-read from the stored positions, never a loss or a double count.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        tz: ZoneInfo,
        lateness: timedelta,
        hour_retention: timedelta,
        touchpoint_labels: LabelLimiter,
        write_attempts: int = 5,
    ) -> None:
        self._sessions = sessions
        self._buckets = BucketCache(tz)
        self._lateness = lateness
        self._hour_retention = hour_retention
        self._touchpoint_labels = touchpoint_labels
        self._write_attempts = write_attempts
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=1)
        self._writer_running = False
        self._stopping = False
        self._failure: BaseException | None = None

    def decode(self, record: Consumed) -> Observation:
        """See `observe`."""
        return observe(record.value, self._buckets)

    async def handle(
        self, batch: Sequence[Decoded[Observation]], positions: Positions
    ) -> Sequence[Produce]:
        """Count the batch and store `positions` in one transaction (now, or queued for the
        running writer); produces nothing."""
        if self._failure is not None:
            raise WriterFailed("the bucket writer failed; restart") from self._failure
        if not positions:
            return []
        now = datetime.now(UTC)
        pending = _Pending(
            records=[
                (
                    item.record.topic,
                    item.record.partition,
                    item.record.offset,
                    to_row(
                        item.value,
                        now=now,
                        lateness=self._lateness,
                        hour_retention=self._hour_retention,
                    ),
                )
                for item in batch
            ],
            positions={(tp.topic, tp.partition): offset for tp, offset in positions.items()},
            now=now,
        )
        if self._writer_running:
            await self._queue.put(pending)
        else:
            await self._write(pending)
        return []

    async def run(self) -> None:
        """The pipelined writer: commit queued batches in order until `stop()`.

        Retries a failing transaction with backoff; after `write_attempts` it raises, so the
        process exits and restarts from the stored positions.
        """
        self._writer_running = True
        self._stopping = False
        try:
            while not (self._stopping and self._queue.empty()):
                pending = await self._queue.get()
                try:
                    if pending is not None:
                        await self._write_with_retry(pending)
                finally:
                    self._queue.task_done()
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._writer_running = False

    def stop(self) -> None:
        """Finish the queued batches and return from `run()`."""
        self._stopping = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def flush(self) -> None:
        """Wait until every queued batch is committed."""
        await self._queue.join()

    async def _write_with_retry(self, pending: _Pending) -> None:
        for attempt in range(1, self._write_attempts + 1):
            try:
                await self._write(pending)
                return
            except (SQLAlchemyError, OSError):
                if attempt == self._write_attempts:
                    raise
                log.warning("bucket write failed (attempt %d); retrying", attempt, exc_info=True)
                await asyncio.sleep(min(5.0, 0.2 * 2 ** (attempt - 1)))

    async def _write(self, pending: _Pending) -> None:
        async with self._sessions() as session, session.begin():
            stored = await repository.lock_positions(session, pending.positions.keys())
            rows: dict[str, repository.EventRow] = {}
            replayed = duplicates = late = 0
            for topic, partition, offset, row in pending.records:
                if offset < stored.get((topic, partition), 0):
                    replayed += 1
                    continue
                if row.uid in rows:
                    duplicates += 1
                    continue
                late += row.minute is None
                rows[row.uid] = row
            counted = await repository.apply_events(session, list(rows.values()))
            await repository.store_positions(session, pending.positions)
        total = 0
        per_label: collections.Counter[tuple[str, str]] = collections.Counter()
        for channel, touchpoint, n in counted:
            per_label[(channel, self._touchpoint_labels(touchpoint))] += n
            total += n
        for (channel, touchpoint), n in per_label.items():
            RESPONSES.labels(channel, touchpoint).inc(n)
        EVENTS.labels("counted").inc(total)
        EVENTS.labels("duplicate").inc(duplicates + len(rows) - total)
        EVENTS.labels("replayed").inc(replayed)
        EVENTS.labels("late").inc(late)

    async def load(self, partitions: Collection[TopicPartition]) -> Positions:
        """Stored positions for `partitions`, 0 where none is stored: the database, not Kafka's
        committed offsets, decides where counting resumes (the runner seeks there)."""
        async with self._sessions() as session:
            found = await repository.load_positions(
                session, [(tp.topic, tp.partition) for tp in partitions]
            )
        return {tp: found.get((tp.topic, tp.partition), 0) for tp in partitions}

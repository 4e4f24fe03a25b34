"""The consumer of `cx.feedback.enriched.v1`: counts each event once into the buckets.

`handle` runs one PostgreSQL transaction per batch that locks the partitions' offset rows,
skips records below the stored positions (a stale owner after a rebalance), inserts the event
uids not seen before, upserts the minute, hour and day buckets of those events and advances
the positions. Either all of that commits or none of it, so a kill -9 at any instant neither
loses nor double-counts: on restart the runner seeks to the stored positions.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiokafka import TopicPartition
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics import repository
from cxloop_metrics.buckets import EventBuckets, event_buckets
from cxloop_metrics.labels import LabelLimiter
from cxruntime.consumer import Consumed, Decoded, InvalidMessage, Positions, Produce
from cxschema import decode_enriched, feedback_uid

RESPONSES = Counter(
    "cx_feedback_responses_total",
    "Feedback events counted into the KPIs, by channel and touchpoint (bounded).",
    ["channel", "touchpoint"],
)
EVENTS = Counter(
    "cx_metrics_events_total",
    "Enriched events seen by the metrics consumer, by outcome: counted, duplicate (uid seen "
    "before), replayed (below the stored position), late (counted, past the lateness).",
    ["outcome"],
)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the metrics need of one enriched event."""

    uid: uuid.UUID
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


def observe(value: bytes | None, tz: ZoneInfo) -> Observation:
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
        uid=uuid.UUID(hex=feedback_uid(event.source, event.id)),
        occurred_at=event.occurred_at,
        buckets=event_buckets(event.occurred_at, tz),
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


class MetricsProcessor:
    """`Processor` and `OffsetStore` of the metrics consumer."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        tz: ZoneInfo,
        lateness: timedelta,
        hour_retention: timedelta,
        touchpoint_labels: LabelLimiter,
    ) -> None:
        self._sessions = sessions
        self._tz = tz
        self._lateness = lateness
        self._hour_retention = hour_retention
        self._touchpoint_labels = touchpoint_labels

    def decode(self, record: Consumed) -> Observation:
        """See `observe`."""
        return observe(record.value, self._tz)

    async def handle(
        self, batch: Sequence[Decoded[Observation]], positions: Positions
    ) -> Sequence[Produce]:
        """Count the batch and store `positions`, in one transaction; produces nothing."""
        if not positions:
            return []
        wanted = {(tp.topic, tp.partition): offset for tp, offset in positions.items()}
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            stored = await repository.lock_positions(session, wanted.keys())
            rows: dict[uuid.UUID, repository.EventRow] = {}
            replayed = duplicates = late = 0
            for item in batch:
                record = item.record
                if record.offset < stored.get((record.topic, record.partition), 0):
                    replayed += 1
                    continue
                obs = item.value
                if obs.uid in rows:
                    duplicates += 1
                    continue
                row = to_row(
                    obs, now=now, lateness=self._lateness, hour_retention=self._hour_retention
                )
                late += row.minute is None
                rows[obs.uid] = row
            counted = await repository.apply_events(session, list(rows.values()))
            await repository.store_positions(session, wanted)
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
        return []

    async def load(self, partitions: Collection[TopicPartition]) -> Positions:
        """The stored positions of `partitions`, so the runner seeks there on assignment."""
        async with self._sessions() as session:
            found = await repository.load_positions(
                session, [(tp.topic, tp.partition) for tp in partitions]
            )
        return {TopicPartition(t, p): offset for (t, p), offset in found.items()}

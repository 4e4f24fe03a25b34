"""The consumer's processor against a real PostgreSQL: pipelined writer, fence, decoding."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiokafka import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics.buckets import event_buckets
from cxloop_metrics.labels import LabelLimiter
from cxloop_metrics.processor import (
    BucketCache,
    MetricsProcessor,
    merge_pending,
    observe,
    says_something,
    select_events,
    to_row,
)
from cxloop_metrics.repository import EventColumns, EventRow
from cxruntime.consumer import Consumed, Decoded, InvalidMessage
from cxschema import ENRICHED, FeedbackEnriched
from tests.metrics.factories import enriched, value
from tests.metrics.test_api import _processor, feed

NOW = datetime.now(UTC)
BERLIN = ZoneInfo("Europe/Berlin")
TP0 = (ENRICHED, 0)
TP1 = (ENRICHED, 1)


def _row(event_id: str) -> EventRow:
    obs = observe(value(enriched(event_id, occurred_at=NOW, nps=5)), BucketCache(BERLIN))
    return to_row(obs, now=NOW, lateness=timedelta(days=7), hour_retention=timedelta(days=35))


def test_select_skips_records_below_the_stored_position_then_keeps_each_uid_once() -> None:
    a, b, c = _row("a"), _row("b"), _row("c")
    records = [(TP0, 8, a), (TP0, 9, b), (TP0, 10, a), (TP0, 11, c), (TP1, 3, b), (TP1, 4, c)]
    # Nothing stored: every record is new; `a` (offset 10) and `b`, `c` on partition 1 repeat.
    fresh = select_events(records, {})
    assert [r.uid for r in fresh.rows] == [a.uid, b.uid, c.uid]
    assert (fresh.replayed, fresh.duplicates) == (0, 3)
    # Partition 0 stored up to 10: offsets 8 and 9 were counted by an earlier owner, so the
    # `a` at offset 10 is this batch's first `a` and counts.
    after = select_events(records, {TP0: 10, TP1: 0})
    assert [r.uid for r in after.rows] == [a.uid, c.uid, b.uid]
    assert (after.replayed, after.duplicates) == (2, 1)


def _events_bound(columns: EventColumns) -> list[tuple[object, ...]]:
    """Each bound event with its bucket tuple resolved: what the statement's join yields."""
    buckets = list(
        zip(columns["minute"], columns["hour"], columns["day"], columns["week"], strict=True)
    )
    return [
        (uid, buckets[ref - 1], tp, nps)
        for uid, ref, tp, nps in zip(
            columns["uid"], columns["b"], columns["tp"], columns["nps"], strict=True
        )
    ]


def _pending(processor: MetricsProcessor, events: list[FeedbackEnriched], first: int) -> Any:
    batch = [
        Decoded(r, processor.decode(r))
        for r in (
            Consumed(ENRICHED, i % 2, first + i, None, value(e), (), 0)
            for i, e in enumerate(events)
        )
    ]
    positions = {TopicPartition(ENRICHED, p): first + len(events) + p for p in (0, 1)}
    return processor._prepare(batch, positions)


def test_merged_batches_bind_each_uid_once_with_the_furthest_positions() -> None:
    processor = _processor(async_sessionmaker())
    old = NOW - timedelta(days=9)  # too late for a minute bucket: another bucket tuple
    a = [enriched(f"m{i}", occurred_at=NOW if i % 2 else old, nps=i) for i in range(6)]
    b = [enriched(f"m{i + 6}", occurred_at=NOW, nps=1) for i in range(4)]
    parts = [_pending(processor, a, 0), _pending(processor, b, 6)]
    merged = merge_pending(parts)
    assert merged.positions == {TP0: 10, TP1: 11}
    assert merged.first_offsets == {TP0: 0, TP1: 1}
    assert len(merged.records) == 10
    # No uid repeats: the parts' columns are concatenated, references moved past the first
    # part's bucket tuples; the statement sees exactly the events of both parts.
    assert merged.columns["b"] == [1, 2, 1, 2, 1, 2, 3, 3, 3, 3]
    assert _events_bound(merged.columns) == _events_bound(parts[0].columns) + _events_bound(
        parts[1].columns
    )
    # A uid of the first part again in the second: bound once, counted as a duplicate.
    again = merge_pending([parts[0], _pending(processor, [a[2], *b], 6)])
    assert len(again.columns["uid"]) == len(set(again.columns["uid"])) == 10
    assert again.selection.duplicates == 1
    assert _events_bound(again.columns) == _events_bound(merged.columns)


def test_bucket_cache_keys_on_the_exact_minute() -> None:
    cache = BucketCache(BERLIN)
    last_instant = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)
    next_minute = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, just after the change
    for t in (last_instant, next_minute, last_instant - timedelta(seconds=59)):
        assert cache(t) == event_buckets(t, BERLIN)
    assert cache(last_instant).hour != cache(next_minute).hour
    # Another zone's offset in the input changes nothing: the key is the instant.
    assert cache(next_minute.astimezone(ZoneInfo("Asia/Kolkata"))) is cache(next_minute)


async def _responses(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        total = await s.scalar(text("SELECT sum(responses) FROM metrics_day WHERE cube = 1"))
    return int(total or 0)


@pytest.mark.integration
async def test_pipelined_writer_commits_in_order_and_stops(
    db_sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    processor = _processor(db_sessions, writer_dsn=database_url)
    writer = asyncio.create_task(processor.run())
    await asyncio.sleep(0)
    for b in range(4):
        events = [
            enriched(f"p{b}-{i}", occurred_at=NOW - timedelta(minutes=i), nps=i % 11)
            for i in range(50)
        ]
        await feed(processor, events, first_offset=b * 50)
    await processor.flush()
    assert await _responses(db_sessions) == 200
    positions = await processor.load([TopicPartition(ENRICHED, 0), TopicPartition(ENRICHED, 1)])
    assert positions == {TopicPartition(ENRICHED, 0): 200, TopicPartition(ENRICHED, 1): 0}
    processor.stop()
    await asyncio.wait_for(writer, timeout=5)
    # With the writer gone, handle writes synchronously again.
    await feed(processor, [enriched("late-one", occurred_at=NOW, nps=10)], first_offset=200)
    assert await _responses(db_sessions) == 201


@pytest.mark.integration
async def test_records_below_the_stored_position_are_skipped(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    processor = _processor(db_sessions)
    first = [enriched(f"f{i}", occurred_at=NOW, nps=9) for i in range(10)]
    await feed(processor, first)
    # A stale owner replays offsets 0..9 with different events: below the position, skipped.
    stale = [enriched(f"s{i}", occurred_at=NOW, nps=0) for i in range(10)]
    await feed(processor, stale)
    assert await _responses(db_sessions) == 10


@pytest.mark.integration
async def test_writer_failure_stops_the_consumer(
    db_sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    processor = MetricsProcessor(
        db_sessions,
        tz=ZoneInfo("Europe/Berlin"),
        lateness=timedelta(days=7),
        hour_retention=timedelta(days=35),
        touchpoint_labels=LabelLimiter(5),
        writer_dsn=database_url,
        write_attempts=1,
    )
    writer = asyncio.create_task(processor.run())
    await asyncio.sleep(0)
    async with db_sessions() as s, s.begin():
        await s.execute(text("ALTER TABLE metrics_day RENAME TO metrics_day_gone"))
    await feed(processor, [enriched("x", occurred_at=NOW, nps=1)])
    with pytest.raises(Exception, match="metrics_day"):
        await asyncio.wait_for(writer, timeout=5)
    with pytest.raises(Exception, match="restart"):
        await feed(processor, [enriched("y", occurred_at=NOW, nps=1)], first_offset=1)


@pytest.mark.integration
def test_undecodable_records_are_invalid(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    processor = _processor(db_sessions)
    for raw in (None, b"{", b'{"id": "x"}'):
        with pytest.raises(InvalidMessage):
            processor.decode(Consumed(ENRICHED, 0, 0, None, raw, (), 0))


@pytest.mark.integration
async def test_pipelined_writer_skips_what_a_previous_owner_stored(
    db_sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    first = [enriched(f"o{i}", occurred_at=NOW, nps=9) for i in range(30)]
    await feed(_processor(db_sessions), first)  # an earlier owner stored offsets 0..29
    processor = _processor(db_sessions, writer_dsn=database_url)
    writer = asyncio.create_task(processor.run())
    await asyncio.sleep(0.2)
    # This owner starts at 20 (its Kafka position was behind): offsets 20..29 hold other
    # events here, and must be skipped on the writer's thread, not counted.
    overlap = [enriched(f"n{i}", occurred_at=NOW, nps=0) for i in range(20)]
    await feed(processor, overlap, first_offset=20)
    await feed(processor, [enriched("n-last", occurred_at=NOW, nps=0)], first_offset=40)
    await processor.flush()
    processor.stop()
    await asyncio.wait_for(writer, timeout=5)
    assert await _responses(db_sessions) == 30 + 10 + 1
    async with db_sessions() as s:
        detractors = await s.scalar(text("SELECT sum(nps_0) FROM metrics_day WHERE cube = 1"))
    assert detractors == 11
    positions = await processor.load([TopicPartition(ENRICHED, 0)])
    assert positions == {TopicPartition(ENRICHED, 0): 41}


@pytest.mark.integration
async def test_batches_queued_behind_a_busy_writer_commit_together_exactly(
    db_sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    processor = _processor(db_sessions, writer_dsn=database_url)
    writer = asyncio.create_task(processor.run())
    await asyncio.sleep(0.2)
    await feed(processor, [enriched("g0", occurred_at=NOW, nps=1)])  # creates the offset row
    await processor.flush()
    async with db_sessions() as blocker, blocker.begin():
        # Hold the partition's offset row: the writer's next transaction waits on it, so the
        # batches after it pile up and are merged into the one after.
        await blocker.execute(text("SELECT * FROM metrics_offsets FOR UPDATE"))
        await feed(
            processor,
            [enriched(f"g{i}", occurred_at=NOW, nps=2) for i in range(1, 4)],
            first_offset=1,
        )
        await feed(
            processor,
            [enriched(f"g{i}", occurred_at=NOW, nps=3) for i in range(4, 8)],
            first_offset=4,
        )
        # g2 again (a re-sent duplicate) and a new event, in the same merged transaction.
        await feed(
            processor,
            [enriched("g2", occurred_at=NOW, nps=2), enriched("g8", occurred_at=NOW, nps=4)],
            first_offset=8,
        )
        await asyncio.sleep(0.3)
        assert await _responses(db_sessions) == 1
    await processor.flush()
    processor.stop()
    await asyncio.wait_for(writer, timeout=5)
    assert await _responses(db_sessions) == 9
    async with db_sessions() as s:
        nps = (
            await s.execute(
                text("SELECT sum(nps_2), sum(nps_3), sum(nps_4) FROM metrics_day WHERE cube = 1")
            )
        ).one()
    assert tuple(nps) == (3, 4, 1)
    positions = await processor.load([TopicPartition(ENRICHED, 0)])
    assert positions == {TopicPartition(ENRICHED, 0): 10}


@pytest.mark.integration
async def test_stop_while_a_batch_waits_for_a_full_transaction_loses_nothing(
    db_sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    processor = MetricsProcessor(
        db_sessions,
        tz=BERLIN,
        lateness=timedelta(days=7),
        hour_retention=timedelta(days=35),
        touchpoint_labels=LabelLimiter(5),
        writer_dsn=database_url,
        max_write=3,
    )
    events = [enriched(f"s{i}", occurred_at=NOW, nps=i) for i in range(7)]
    writer = asyncio.create_task(processor.run())
    await asyncio.sleep(0.2)
    await feed(processor, events[:1])
    await processor.flush()
    async with db_sessions() as blocker, blocker.begin():
        await blocker.execute(text("SELECT * FROM metrics_offsets FOR UPDATE"))
        await feed(processor, events[1:3], first_offset=1)  # being written (blocked)
        await feed(processor, events[3:5], first_offset=3)  # the next transaction
        # 2 + 2 > 3: this batch waits for the blocked one; the service stops meanwhile.
        waiting = asyncio.create_task(feed(processor, events[5:7], first_offset=5))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        processor.stop()
    await asyncio.wait_for(waiting, timeout=10)
    await asyncio.wait_for(writer, timeout=10)
    assert await _responses(db_sessions) == 7
    async with db_sessions() as s:
        nps = await s.scalar(text("SELECT sum(nps_6) FROM metrics_day WHERE cube = 1"))
    assert nps == 1
    positions = await processor.load([TopicPartition(ENRICHED, 0)])
    assert positions == {TopicPartition(ENRICHED, 0): 7}


@pytest.mark.parametrize(
    ("comment", "counts"),
    [
        (None, False),
        ("", False),
        (".", False),
        ("[EMAIL]", False),
        ("[PHONE] [EMAIL]!", False),
        ("[EMAIL] danke", True),
        ("gut", True),
        ("👍", True),
        ("4711?", True),
    ],
)
def test_only_comments_that_say_something_count_in_the_sentiment_kpis(
    comment: str | None, counts: bool
) -> None:
    assert says_something(comment) is counts
    event = enriched("s", occurred_at=NOW, nps=9, comment=comment, sentiment=("neutral", 0.0))
    obs = observe(value(event), BucketCache(BERLIN))
    assert (obs.sentiment is not None) is counts

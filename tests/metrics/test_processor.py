"""The consumer's processor against a real PostgreSQL: pipelined writer, fence, decoding."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiokafka import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics.labels import LabelLimiter
from cxloop_metrics.processor import MetricsProcessor
from cxruntime.consumer import Consumed, InvalidMessage
from cxschema import ENRICHED
from tests.metrics.factories import enriched
from tests.metrics.test_api import _processor, feed

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


async def _responses(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        total = await s.scalar(text("SELECT sum(responses) FROM metrics_day WHERE cube = 1"))
    return int(total or 0)


async def test_pipelined_writer_commits_in_order_and_stops(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    processor = _processor(db_sessions)
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


async def test_writer_failure_stops_the_consumer(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    processor = MetricsProcessor(
        db_sessions,
        tz=ZoneInfo("Europe/Berlin"),
        lateness=timedelta(days=7),
        hour_retention=timedelta(days=35),
        touchpoint_labels=LabelLimiter(5),
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


def test_undecodable_records_are_invalid(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    processor = _processor(db_sessions)
    for value in (None, b"{", b'{"id": "x"}'):
        with pytest.raises(InvalidMessage):
            processor.decode(Consumed(ENRICHED, 0, 0, None, value, (), 0))

"""Reading and replaying the dead-letter topic (`cx.feedback.invalid.v1`): `cxloop dead-letters`.

A consumer dead-letters a record it can never process with the original bytes, key and headers
plus `cx_error_reason`, `cx_error_stage`, `cx_error_topic`, `cx_error_partition` and
`cx_error_offset` (`cxschema.invalid_headers`). Nothing is lost there, but nothing comes back by
itself either: once the cause is fixed (a bad deploy, a taxonomy error, a schema the producer
got wrong), `replay` writes the chosen records to the topic they came from again, with their
original key and headers, and the consumers process them like new ones. Replaying is
at-least-once like everything else: the sinks deduplicate by event id, so a record replayed
twice is counted once.

The topic is read without a consumer group (nothing is committed, no consumer is disturbed),
from its beginning to the end it had when the read started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from cxruntime.kafka import make_producer, read_to_end
from cxschema import ERROR_HEADER_PREFIX, INVALID, Headers, header_value, without_error_headers

READ_TIMEOUT_S = 30.0
"""How long the read may go without a record before it gives up (the broker stalled)."""


class DeadLetterReadError(RuntimeError):
    """The dead-letter topic could not be read to its end."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic and what its headers say about it."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def _error(self, name: str) -> str | None:
        return header_value(self.headers, ERROR_HEADER_PREFIX + name)

    @property
    def reason(self) -> str:
        """Why the record was dead-lettered."""
        return self._error("reason") or ""

    @property
    def stage(self) -> str:
        """The consumer that gave up on it (`enricher`, `metrics`, `closed_loop`, ...)."""
        return self._error("stage") or ""

    @property
    def source_topic(self) -> str | None:
        """The topic the record was read from, where `replay` writes it again."""
        return self._error("topic")

    @property
    def source(self) -> str:
        """`topic[partition]@offset` of the original record, as far as the headers say."""
        partition, offset = self._error("partition"), self._error("offset")
        return f"{self.source_topic or '?'}[{partition or '?'}]@{offset or '?'}"

    @property
    def time(self) -> datetime:
        """When it was dead-lettered (the record's timestamp)."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def original_headers(self) -> Headers:
        """The headers the record had before it was dead-lettered."""
        return without_error_headers(self.headers)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command acts on; unset fields select everything."""

    stage: str | None = None
    reason: str | None = None  # a substring, any case
    topic: str | None = None  # the source topic
    since: datetime | None = None

    def __call__(self, letter: DeadLetter) -> bool:
        """True for a dead letter this selection takes."""
        if self.stage is not None and letter.stage != self.stage:
            return False
        if self.reason is not None and self.reason.lower() not in letter.reason.lower():
            return False
        if self.topic is not None and letter.source_topic != self.topic:
            return False
        return self.since is None or letter.time >= self.since


async def _true_ends(
    consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Each partition's end, read from its last batch (see `read_to_end`)."""
    true = dict(ends)
    for tp, end in ends.items():
        if end > starts[tp]:
            true[tp] = await read_to_end(consumer, tp, end, starts[tp], until=end, timeout_ms=2000)
    return true


async def read_dead_letters(
    bootstrap: str,
    keep: Callable[[DeadLetter], bool] | None = None,
    *,
    topic: str = INVALID,
    timeout_s: float = READ_TIMEOUT_S,
) -> tuple[list[DeadLetter], int]:
    """The dead letters `keep` takes (all without it), oldest first, and how many the topic
    held in all."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id="cxloop-dead-letters",
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await _true_ends(consumer, starts, await consumer.end_offsets(partitions))
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        kept: list[DeadLetter] = []
        last_progress = time.monotonic()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            if not batches and time.monotonic() - last_progress > timeout_s:
                unread = 0
                for tp in remaining:
                    unread += ends[tp] - await consumer.position(tp)
                raise DeadLetterReadError(
                    f"{topic}: no record for {timeout_s:.0f} s with {unread} unread"
                )
            for tp, messages in batches.items():
                last_progress = time.monotonic()
                for message in messages:
                    if message.offset >= ends[tp]:
                        continue
                    letter = DeadLetter(
                        partition=tp.partition,
                        offset=message.offset,
                        timestamp_ms=message.timestamp,
                        key=message.key,
                        value=message.value or b"",
                        headers=tuple(message.headers or ()),
                    )
                    if keep is None or keep(letter):
                        kept.append(letter)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    kept.sort(key=lambda letter: (letter.timestamp_ms, letter.partition, letter.offset))
    return kept, total


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        topics = await consumer.topics()  # a metadata request
        found = consumer.partitions_for_topic(topic) if topic in topics else None
    if not found:
        raise DeadLetterReadError(f"topic {topic} does not exist (run `cxloop topics create`)")
    return [TopicPartition(topic, partition) for partition in sorted(found)]


async def replay(bootstrap: str, letters: Iterable[DeadLetter]) -> tuple[int, int]:
    """Write each dead letter to its source topic again with its original key and headers;
    returns (replayed, skipped: no source topic in the headers). Returns once every record is
    acknowledged."""
    producer = make_producer(bootstrap, client_id="cxloop-dead-letters")
    await producer.start()
    try:
        deliveries = []
        skipped = 0
        for letter in letters:
            if not letter.source_topic:
                skipped += 1
                continue
            deliveries.append(
                await producer.send(
                    letter.source_topic,
                    letter.value,
                    key=letter.key,
                    headers=letter.original_headers,
                )
            )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return len(deliveries), skipped

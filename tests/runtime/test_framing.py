"""The framer against a real broker: partitions as the producer's own partitioner picks them,
several topics at once, flush and linger, eager shipping, and a record too large for any batch."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from cxruntime.embedded import EmbeddedKafka
from cxruntime.framing import Framer
from cxruntime.kafka import make_producer
from cxschema import ENRICHED, INVALID, RAW

pytestmark = pytest.mark.integration


async def _read_all(
    bootstrap: str, topic: str, partitions: list[int], expect: int
) -> list[tuple[int, bytes | None, int]]:
    """(partition, key, value length) of `expect` records of `topic`, from the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        seen: list[tuple[int, bytes | None, int]] = []
        async with asyncio.timeout(15):
            while len(seen) < expect:
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    seen.extend((m.partition, m.key, len(m.value or b"")) for m in messages)
        return seen
    finally:
        await consumer.stop()


async def test_keyed_records_land_where_the_default_partitioner_puts_them(
    kafka: EmbeddedKafka,
) -> None:
    producer = make_producer(kafka.bootstrap, client_id="framing-test")
    await producer.start()
    try:
        framer = Framer(producer, linger_s=None)
        topics = (RAW, ENRICHED)
        assert framer.partitions_stale(topics)
        await framer.refresh_partitions(topics)
        assert not framer.partitions_stale(topics)
        keys = [f"crm-{i}".encode() for i in range(60)]
        deliveries = {framer.append(RAW, key, b"{}", [("h", b"1")]) for key in keys}
        deliveries |= {framer.append(ENRICHED, key, b"{}", []) for key in keys[:10]}
        # Nothing leaves before the flush when there is no linger timer.
        await asyncio.sleep(0.05)
        assert not any(d.done() for d in deliveries)
        framer.flush()
        async with asyncio.timeout(10):
            await asyncio.gather(*deliveries)
        partitions = sorted(await producer.partitions_for(RAW))
        enriched_partitions = sorted(await producer.partitions_for(ENRICHED))
    finally:
        await producer.stop()

    expected = DefaultPartitioner()
    landed = await _read_all(kafka.bootstrap, RAW, partitions, len(keys))
    assert len(landed) == len(keys)
    for partition, key, _ in landed:
        assert key is not None
        assert partition == expected(key, partitions, partitions)
    assert len({p for p, _, _ in landed}) == len(partitions), "60 keys spread over every partition"
    assert len(await _read_all(kafka.bootstrap, ENRICHED, enriched_partitions, 10)) == 10


async def test_linger_ships_without_flush_and_unkeyed_records_spread(
    kafka: EmbeddedKafka,
) -> None:
    producer = make_producer(kafka.bootstrap, client_id="framing-test")
    await producer.start()
    delivered: list[float] = []
    try:
        framer = Framer(producer, linger_s=0.01, on_delivered=delivered.append)
        await framer.refresh_partitions([INVALID])
        deliveries = {framer.append(INVALID, None, b"x", []) for _ in range(300)}
        async with asyncio.timeout(10):
            await asyncio.gather(*deliveries)
        await framer.close()
        partitions = sorted(await producer.partitions_for(INVALID))
    finally:
        await producer.stop()
    assert delivered
    assert all(seconds >= 0 for seconds in delivered)
    landed = await _read_all(kafka.bootstrap, INVALID, partitions, 300)
    per_partition = Counter(p for p, _, _ in landed)
    assert sum(per_partition.values()) == 300
    assert len(per_partition) > 1, "records without a key are not all on one partition"


async def test_a_full_batch_leaves_and_the_record_opens_the_next(kafka: EmbeddedKafka) -> None:
    producer = make_producer(kafka.bootstrap, client_id="framing-test", max_batch_size=1024)
    await producer.start()
    try:
        framer = Framer(producer, linger_s=None)
        await framer.refresh_partitions([RAW])
        small = framer.append(RAW, b"k", b"x" * 100, [])
        # Larger than a whole batch: the open batch is sealed, the record gets a batch alone.
        large = framer.append(RAW, b"k", b"y" * 4096, [])
        after = framer.append(RAW, b"k", b"z" * 10, [])
        assert small is not large
        assert large is not after
        framer.flush()
        async with asyncio.timeout(10):
            await asyncio.gather(small, large, after)
        partitions = sorted(await producer.partitions_for(RAW))
    finally:
        await producer.stop()
    landed = await _read_all(kafka.bootstrap, RAW, partitions, 3)
    assert [size for _, _, size in landed] == [100, 4096, 10], "one partition, order kept"


async def test_eager_ships_when_the_pipe_is_free_and_gathers_while_a_batch_is_unacknowledged(
    kafka: EmbeddedKafka,
) -> None:
    producer = make_producer(kafka.bootstrap, client_id="framing-test")
    await producer.start()
    try:
        # A linger far beyond the test's timeouts: every delivery below is the eager rule's.
        framer = Framer(producer, linger_s=60.0, eager=True)
        await framer.refresh_partitions([RAW])
        first = framer.append(RAW, b"k", b"1", [])
        # Nothing awaits an acknowledgement: the batch leaves as the loop's iteration ends.
        await asyncio.sleep(0)
        later = [framer.append(RAW, b"k", str(i).encode(), []) for i in range(2, 12)]
        assert later[0] is not first
        assert all(delivery is later[0] for delivery in later), "gathered into one batch"
        async with asyncio.timeout(10):
            await first
        # The first batch's acknowledgement ships the gathered one.
        async with asyncio.timeout(10):
            await later[0]
        idle = framer.append(RAW, b"k", b"12", [])
        async with asyncio.timeout(10):
            await idle
        partitions = sorted(await producer.partitions_for(RAW))
    finally:
        await producer.stop()
    landed = await _read_all(kafka.bootstrap, RAW, partitions, 12)
    assert [size for _, _, size in landed] == [1] * 9 + [2] * 3, "one partition, order kept"

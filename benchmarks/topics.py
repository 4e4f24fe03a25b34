"""Filling a topic before a benchmark: records written fast, in chunks, with acks=all."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from cxschema import Headers

Record = tuple[bytes | None, bytes, Headers]
"""(key, value, headers) of one record."""

CHUNK = 5000


async def fill_topic(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    """Write `records` to `topic`; returns once Kafka acknowledged every one."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for start in range(0, len(records), CHUNK):
            futures = [
                await producer.send(topic, value, key=key, headers=headers)
                for key, value, headers in records[start : start + CHUNK]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()

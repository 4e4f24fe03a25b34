"""Kafka clients built the one way cxloop uses them.

Producers wait for all in-sync replicas (`acks=all`); the idempotent producer and transactions
are not used (the embedded broker lacks them, and every sink deduplicates anyway).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from cxruntime.probes import CachedProbe
from cxschema import TOPICS

log = logging.getLogger(__name__)


def make_producer(
    bootstrap: str,
    *,
    client_id: str,
    linger_ms: int = 2,
    request_timeout_ms: int = 10_000,
    max_batch_size: int = 256 * 1024,
) -> AIOKafkaProducer:
    """A producer that reports success only once every in-sync replica holds the record."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
        request_timeout_ms=request_timeout_ms,
        max_batch_size=max_batch_size,
        max_request_size=2 * 1024 * 1024,
    )


async def ensure_topics(
    bootstrap: str,
    *,
    partitions: int,
    replication_factor: int = 1,
    topics: Iterable[str] = TOPICS,
) -> list[str]:
    """Create the topics that do not exist yet; returns those created. Safe to call again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="cxloop-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return []
        try:
            await admin.create_topics(
                [NewTopic(t, partitions, replication_factor) for t in missing],
            )
        except TopicAlreadyExistsError:
            log.info("topics created concurrently by another process")
        return missing
    finally:
        await admin.close()


async def wait_for_kafka(bootstrap: str, *, timeout_s: float = 30.0) -> None:
    """Block until the broker answers a metadata request, or raise `TimeoutError`."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="cxloop-probe", request_timeout_ms=2000
        )
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
    raise TimeoutError(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s: {last!r}")


class KafkaProbe(CachedProbe):
    """Readiness probe on a started producer: a metadata round-trip."""

    failures = (KafkaError, OSError)

    def __init__(self, producer: AIOKafkaProducer, *, timeout_s: float = 1.5) -> None:
        super().__init__(timeout_s=timeout_s)
        self._producer = producer

    async def check(self) -> None:
        await self._producer.client.fetch_all_metadata()


async def read_to_end(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    reported_end: int,
    start: int,
    *,
    until: int,
    timeout_ms: int = 1000,
) -> int:
    """One past the last offset of `tp` (assigned to `consumer`), reading its log from just
    before `reported_end` no further than past `until`; `reported_end` if nothing is there.

    The embedded broker reports a partition's end as its last batch's first offset plus one,
    short of the true end by the batch's size less one; Kafka reports it exactly, and the read
    confirms it."""
    end = offset = max(reported_end - 1, start)
    consumer.seek(tp, offset)
    while end < until:
        records = (await consumer.getmany(tp, timeout_ms=timeout_ms)).get(tp, [])
        if not records:
            break
        end = records[-1].offset + 1
    return max(end, reported_end)

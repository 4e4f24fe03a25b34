"""Framing records into Kafka batches ourselves: one open batch per partition, shared by every
concurrent request, sealed when full or after the linger time.

`AIOKafkaProducer.send()` costs a future and a metadata round of Python per record, and
`send_batch()` alone admits one queued batch per partition, so requests that each frame their
own small batches queue behind each other. Appending to a shared open batch costs a few
microseconds per record and fills batches up to the producer's batch size.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from cxloop_collector import telemetry
from cxschema import Headers

PARTITIONS_TTL_S = 10.0


@dataclass
class _OpenBatch:
    builder: Any
    done: asyncio.Future[None]
    count: int = 0
    shipped_at: float = 0.0


def _resolve(target: asyncio.Future[None], source: asyncio.Future[Any]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.set_exception(KafkaError("the delivery was cancelled"))
    elif (error := source.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(None)


class Framer:
    """Appends records to per-partition batches; each append returns its batch's delivery."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, *, linger_s: float) -> None:
        self._producer = producer
        self._topic = topic
        self._linger_s = linger_s
        self._loop = asyncio.get_running_loop()
        self._open: dict[int, _OpenBatch] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._partitions: list[int] = []
        self._partitions_at = float("-inf")
        self._shipping: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def partitions_stale(self) -> bool:
        """True when the partitions must be (re)read before appending."""
        return not self._partitions or time.monotonic() - self._partitions_at >= PARTITIONS_TTL_S

    async def refresh_partitions(self) -> None:
        """Know the topic's partitions (cached; the producer waits for metadata if needed)."""
        if self._partitions and time.monotonic() - self._partitions_at < PARTITIONS_TTL_S:
            return
        self._partitions = sorted(await self._producer.partitions_for(self._topic))
        self._partitions_at = time.monotonic()

    def append(self, key: bytes, value: bytes, headers: Headers) -> asyncio.Future[None]:
        """Add a record; the future resolves once Kafka acknowledged its batch (acks=all).

        Partitions are chosen like the producer's default partitioner (murmur2 of the key), so
        one customer's records stay on one partition.
        """
        partitions = self._partitions
        partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        batch = self._open.get(partition) or self._new(partition)
        if batch.builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            if batch.count == 0:
                raise KafkaError("a record larger than a whole batch")
            self._seal(partition)
            batch = self._new(partition)
            if batch.builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise KafkaError("a record larger than a whole batch")
        batch.count += 1
        return batch.done

    def _new(self, partition: int) -> _OpenBatch:
        batch = _OpenBatch(builder=self._producer.create_batch(), done=self._loop.create_future())
        self._open[partition] = batch
        if self._timer is None:
            # One timer for every partition: they are sealed together and leave in one produce
            # request, since each request to the broker costs far more than a record.
            self._timer = self._loop.call_later(self._linger_s, self._seal_all)
        return batch

    def _seal_all(self) -> None:
        self._timer = None
        for partition in list(self._open):
            self._seal(partition)

    def _seal(self, partition: int) -> None:
        batch = self._open.pop(partition)
        task = self._loop.create_task(self._ship(partition, batch))
        self._shipping.add(task)
        task.add_done_callback(self._shipping.discard)

    async def _ship(self, partition: int, batch: _OpenBatch) -> None:
        # One batch per partition at a time: the producer queues one per partition and makes
        # every further caller wait and retry.
        lock = self._locks.setdefault(partition, asyncio.Lock())
        try:
            async with lock:
                delivery = await self._producer.send_batch(
                    batch.builder, self._topic, partition=partition
                )
        except (KafkaError, OSError) as exc:
            if not batch.done.done():
                batch.done.set_exception(exc)
            return
        batch.shipped_at = time.perf_counter()
        delivery.add_done_callback(lambda source: self._delivered(batch, source))

    @staticmethod
    def _delivered(batch: _OpenBatch, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is None:
            telemetry.PRODUCE_SECONDS.observe(time.perf_counter() - batch.shipped_at)
        _resolve(batch.done, delivery)

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Seal every open batch and hand it to the producer (before the producer stops)."""
        if self._timer is not None:
            self._timer.cancel()
        self._seal_all()
        if self._shipping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self._shipping, return_exceptions=True), timeout_s
                )

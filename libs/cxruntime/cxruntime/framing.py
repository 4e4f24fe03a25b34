"""Framing records into Kafka batches ourselves: one open batch per partition, shared by every
caller, sealed when full, after the linger time, or on `flush()`.

`AIOKafkaProducer.send()` costs a future, a partitioner call and a metadata lookup of Python per
record, and `send_batch()` alone admits one queued batch per partition, so callers that each
frame their own small batches queue behind each other. Appending to a shared open batch costs a
few microseconds per record and fills batches up to the producer's batch size.

Partitions are chosen like the producer's default partitioner (`cxruntime.partitioning`), so
one customer's records stay on one partition whichever way they were produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from cxruntime.partitioning import hash_keys, partition_for
from cxschema import Headers

PARTITIONS_TTL_S = 10.0
"""How long a topic's partition list is trusted before it is read again from the metadata."""


@dataclass(slots=True)
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
    """Appends records to per-partition batches; each append returns its batch's delivery.

    `linger_s` None means no timer: batches leave when full or on `flush()` (a consumer that has
    its whole output at hand flushes at once). `on_delivered` is called with the seconds from
    shipping to the broker's acknowledgement of each batch.

    `eager` ships open batches as soon as nothing shipped earlier awaits the broker's
    acknowledgement: at once (at the end of the event loop's current iteration) when the pipe is
    free, else the moment the last outstanding batch is acknowledged, with `linger_s` as the
    longest wait. Records then wait for the broker only as long as it takes to answer the batch
    before theirs, and batches grow with the load by themselves (group commit), where a fixed
    linger makes every record wait out the timer even while the process has nothing else to do.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        linger_s: float | None,
        on_delivered: Callable[[float], None] | None = None,
        eager: bool = False,
    ) -> None:
        self._producer = producer
        self._linger_s = linger_s
        self._on_delivered = on_delivered
        self._eager = eager
        self._loop = asyncio.get_running_loop()
        self._open: dict[tuple[str, int], _OpenBatch] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._partitions: dict[str, tuple[list[int], float]] = {}
        self._shipping: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._unacknowledged = 0
        """Sealed batches whose delivery has not settled yet (eager mode)."""
        self._soon: asyncio.Handle | None = None

    @property
    def eager(self) -> bool:
        """Whether batches ship as soon as nothing awaits an acknowledgement."""
        return self._eager

    def partitions_stale(self, topics: Iterable[str]) -> bool:
        """True when some topic's partitions must be (re)read before appending to it."""
        now = time.monotonic()
        for topic in topics:
            known = self._partitions.get(topic)
            if known is None or now - known[1] >= PARTITIONS_TTL_S:
                return True
        return False

    async def refresh_partitions(self, topics: Iterable[str]) -> None:
        """Know the topics' partitions (cached; the producer waits for metadata if needed)."""
        for topic in topics:
            known = self._partitions.get(topic)
            if known is not None and time.monotonic() - known[1] < PARTITIONS_TTL_S:
                continue
            partitions = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = (partitions, time.monotonic())

    @staticmethod
    def prepare(keys: Iterable[bytes | None]) -> None:
        """Ahead of appending many records: hash their keys not seen yet in one pass
        (`cxruntime.partitioning.hash_keys`), which their appends then find."""
        hash_keys(keys)

    def append(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers
    ) -> asyncio.Future[None]:
        """Add a record; the future resolves once Kafka acknowledged its batch (acks=all).

        The topic's partitions must be known (`refresh_partitions`).
        """
        slot = (topic, partition_for(key, self._partitions[topic][0]))
        batch = self._open.get(slot) or self._new(slot)
        if batch.builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            # Full: it leaves now and the record opens the next batch (an empty batch takes any
            # record; the broker's own size limit is the producer's max_request_size).
            self._seal(slot)
            batch = self._new(slot)
            if batch.builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise KafkaError("the record did not fit an empty batch")
        batch.count += 1
        return batch.done

    def flush(self) -> None:
        """Ship every open batch now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        for slot in list(self._open):
            self._seal(slot)

    def _new(self, slot: tuple[str, int]) -> _OpenBatch:
        batch = _OpenBatch(builder=self._producer.create_batch(), done=self._loop.create_future())
        self._open[slot] = batch
        if self._eager and self._unacknowledged == 0:
            # The pipe is free: leave with whatever the loop's current iteration appends.
            if self._soon is None:
                self._soon = self._loop.call_soon(self.flush)
        elif self._timer is None and self._linger_s is not None:
            # One timer for every partition: they are sealed together and leave in one produce
            # request, since each request to the broker costs far more than a record.
            self._timer = self._loop.call_later(self._linger_s, self._linger_over)
        return batch

    def _linger_over(self) -> None:
        self._timer = None
        self.flush()

    def _settled(self, _: asyncio.Future[None]) -> None:
        self._unacknowledged -= 1
        if self._unacknowledged == 0 and self._open:
            self.flush()

    def _seal(self, slot: tuple[str, int]) -> None:
        batch = self._open.pop(slot)
        if self._eager:
            self._unacknowledged += 1
            batch.done.add_done_callback(self._settled)
        # A closed builder is ready at once; an open one lingers again for the producer's own
        # linger_ms inside aiokafka's accumulator after `send_batch`.
        batch.builder.close()
        task = self._loop.create_task(self._ship(slot, batch))
        self._shipping.add(task)
        task.add_done_callback(self._shipping.discard)

    async def _ship(self, slot: tuple[str, int], batch: _OpenBatch) -> None:
        # One batch per partition at a time: the producer queues one per partition and makes
        # every further caller wait and retry.
        lock = self._locks.setdefault(slot, asyncio.Lock())
        topic, partition = slot
        try:
            async with lock:
                delivery = await self._producer.send_batch(
                    batch.builder, topic, partition=partition
                )
        except (KafkaError, OSError) as exc:
            if not batch.done.done():
                batch.done.set_exception(exc)
            return
        batch.shipped_at = time.perf_counter()
        delivery.add_done_callback(functools.partial(self._delivered, batch))

    def _delivered(self, batch: _OpenBatch, delivery: asyncio.Future[Any]) -> None:
        if (
            self._on_delivered is not None
            and not delivery.cancelled()
            and delivery.exception() is None
        ):
            self._on_delivered(time.perf_counter() - batch.shipped_at)
        _resolve(batch.done, delivery)

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Seal every open batch and hand it to the producer (before the producer stops)."""
        self.flush()
        if self._shipping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self._shipping, return_exceptions=True), timeout_s
                )

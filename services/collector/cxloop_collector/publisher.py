"""Handing accepted events to Kafka: acknowledged or refused, never half-accepted.

A request is answered 2xx only after the broker acknowledged its record with `acks=all`. A
record that is not acknowledged within the produce timeout is answered 503; it stays tracked
until the producer settles it, so that a retry of the same (source, id) waits for that first
attempt instead of writing a second copy, and is answered as a duplicate once it landed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from cxloop_collector import telemetry
from cxloop_collector.memo import UidMemo
from cxschema import RAW, Headers

log = logging.getLogger(__name__)

BATCHED_FROM: Final = 8
"""From this many records on, a request's records are framed into one batch per partition."""


class Outcome(enum.Enum):
    """What happened to one record."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNAVAILABLE = "unavailable"


class Overloaded(Exception):
    """More events would be in flight than the configured bound."""


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record of `cx.feedback.raw.v1` and the uid it is deduplicated on."""

    uid: str
    event_id: str
    channel: str
    key: bytes
    value: bytes
    headers: Headers


class Publisher:
    """Produces records with a deadline, an in-flight bound and duplicate detection."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_in_flight: int,
        memo_size: int,
        topic: str = RAW,
    ) -> None:
        self.producer: AIOKafkaProducer | None = None
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._topic = topic
        self._memo = UidMemo(memo_size)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Records handed to the producer and not settled yet."""
        return self._in_flight

    async def publish(self, records: Sequence[Record]) -> list[Outcome]:
        """Produce `records`; one outcome each, all settled within the produce timeout.

        Raises `Overloaded` (nothing produced) when the new records would exceed the in-flight
        bound.
        """
        outcomes: list[Outcome | None] = [None] * len(records)
        waits: list[tuple[int, asyncio.Future[Any], bool]] = []
        fresh: list[int] = []
        seen: set[str] = set()
        for index, record in enumerate(records):
            uid = record.uid
            if uid in self._memo or uid in seen:
                outcomes[index] = Outcome.DUPLICATE
                continue
            seen.add(uid)
            pending = self._pending.get(uid)
            if pending is not None:
                waits.append((index, pending, True))
            else:
                fresh.append(index)
        if fresh and self._in_flight + len(fresh) > self._max_in_flight:
            raise Overloaded
        producer = self.producer
        deadline = time.monotonic() + self._timeout_s
        if fresh:
            if producer is None:
                for index in fresh:
                    outcomes[index] = Outcome.UNAVAILABLE
            else:
                await self._send(
                    producer,
                    records=records,
                    fresh=fresh,
                    waits=waits,
                    outcomes=outcomes,
                    deadline=deadline,
                )
        if waits:
            futures = {future for _, future, _ in waits}
            await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
            for index, future, duplicate in waits:
                if future.done() and not future.cancelled() and future.exception() is None:
                    outcomes[index] = Outcome.DUPLICATE if duplicate else Outcome.ACCEPTED
                else:
                    outcomes[index] = Outcome.UNAVAILABLE
        return [outcome or Outcome.UNAVAILABLE for outcome in outcomes]

    async def _send(
        self,
        producer: AIOKafkaProducer,
        *,
        records: Sequence[Record],
        fresh: list[int],
        waits: list[tuple[int, asyncio.Future[Any], bool]],
        outcomes: list[Outcome | None],
        deadline: float,
    ) -> None:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                if len(fresh) >= BATCHED_FROM:
                    await self._send_batches(producer, records, fresh, waits)
                    return
                for index in fresh:
                    record = records[index]
                    future = await producer.send(
                        self._topic, value=record.value, key=record.key, headers=record.headers
                    )
                    self._track([record.uid], future)
                    waits.append((index, future, False))
        except (TimeoutError, KafkaError, OSError) as exc:
            # Records not handed over yet are refused; those handed over are awaited below.
            log.warning("could not hand records to the producer: %r", exc)
            handed = {index for index, _, _ in waits}
            for index in fresh:
                if index not in handed:
                    outcomes[index] = Outcome.UNAVAILABLE

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[Record],
        fresh: list[int],
        waits: list[tuple[int, asyncio.Future[Any], bool]],
    ) -> None:
        """Frame many records into one batch per partition: far cheaper than a `send()` each.

        Partitions are chosen like the producer's default partitioner (murmur2 of the key), so
        one customer's records land on the same partition on either path.
        """
        partitions = sorted(await producer.partitions_for(self._topic))
        open_batches: dict[int, tuple[Any, list[int]]] = {}

        async def flush(partition: int) -> None:
            builder, indexes = open_batches.pop(partition)
            future = await producer.send_batch(builder, self._topic, partition=partition)
            self._track([records[i].uid for i in indexes], future)
            waits.extend((i, future, False) for i in indexes)

        for index in fresh:
            record = records[index]
            partition = partitions[(murmur2(record.key) & 0x7FFFFFFF) % len(partitions)]
            for _attempt in range(2):
                if partition not in open_batches:
                    open_batches[partition] = (producer.create_batch(), [])
                builder, indexes = open_batches[partition]
                appended = builder.append(
                    key=record.key, value=record.value, timestamp=None, headers=record.headers
                )
                if appended is not None:
                    indexes.append(index)
                    break
                if not indexes:
                    raise KafkaError("a record is larger than a whole batch")
                await flush(partition)
        for partition in list(open_batches):
            await flush(partition)

    def _track(self, uids: list[str], future: asyncio.Future[Any]) -> None:
        for uid in uids:
            self._pending[uid] = future
        self._in_flight += len(uids)
        telemetry.IN_FLIGHT.set(self._in_flight)
        future.add_done_callback(partial(self._settle, uids, time.perf_counter()))

    def _settle(self, uids: list[str], started: float, future: asyncio.Future[Any]) -> None:
        for uid in uids:
            if self._pending.get(uid) is future:
                del self._pending[uid]
        self._in_flight -= len(uids)
        telemetry.IN_FLIGHT.set(self._in_flight)
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            for uid in uids:
                self._memo.add(uid)
            telemetry.PRODUCE_SECONDS.observe(time.perf_counter() - started)
        else:
            log.warning("Kafka did not acknowledge %d record(s): %r", len(uids), error)

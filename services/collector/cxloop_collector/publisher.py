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
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from cxloop_collector import telemetry
from cxloop_collector.memo import UidMemo
from cxruntime.framing import Framer
from cxschema import RAW, Headers

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What happened to one record."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNAVAILABLE = "unavailable"


class Overloaded(Exception):
    """More events would be in flight than the configured bound."""


@dataclass(slots=True)
class Record:
    """One Kafka record of `cx.feedback.raw.v1` and the uid it is deduplicated on.

    Not frozen: a frozen dataclass costs a `object.__setattr__` per field on the hot path."""

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
        self.framer: Framer | None = None
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._topic = topic
        self._memo = UidMemo(memo_size)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._batches: dict[asyncio.Future[Any], _Tracked] = {}
        self._in_flight = 0
        telemetry.IN_FLIGHT.set_function(lambda: self._in_flight)

    def attach(self, producer: AIOKafkaProducer, *, linger_s: float, group_commit: bool) -> None:
        """Start producing through `producer` (called once it connected). `group_commit`: a
        batch leaves as soon as the previous one is acknowledged (`Framer(eager=True)`), with
        `linger_s` as the longest wait; otherwise every `linger_s`."""
        self.framer = Framer(
            producer,
            linger_s=linger_s,
            on_delivered=telemetry.PRODUCE_SECONDS.observe,
            eager=group_commit,
        )
        self.producer = producer

    async def close(self) -> None:
        """Hand every framed record to the producer; call before stopping it."""
        if self.framer is not None:
            await self.framer.close()

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
        framer = self.framer
        deadline = time.monotonic() + self._timeout_s
        if fresh:
            if framer is None:
                for index in fresh:
                    outcomes[index] = Outcome.UNAVAILABLE
            else:
                await self._send(
                    framer,
                    records=records,
                    fresh=fresh,
                    waits=waits,
                    outcomes=outcomes,
                    deadline=deadline,
                )
        if waits:
            futures = {future for _, future, _ in waits}
            if len(futures) == 1 and not waits[0][2]:
                # The common case, one record or records of one batch: wait with the batch's
                # other requests instead of arming a timer per request.
                await self._batch_settled(waits[0][1], deadline)
            else:
                await _settled(futures, deadline - time.monotonic())
            settled: dict[tuple[asyncio.Future[Any], bool], Outcome] = {}
            for index, future, duplicate in waits:
                outcome = settled.get((future, duplicate))
                if outcome is None:
                    outcome = settled[future, duplicate] = _outcome(future, duplicate=duplicate)
                outcomes[index] = outcome
        return [outcome or Outcome.UNAVAILABLE for outcome in outcomes]

    async def publish_one(self, record: Record) -> Outcome:
        """`publish((record,))[0]`, without the bookkeeping for several records in the common
        case of a new record and a ready producer (about 2 us less per single-event request).
        Raises `Overloaded` like `publish`."""
        uid = record.uid
        framer = self.framer
        if (
            uid in self._memo
            or uid in self._pending
            or framer is None
            or framer.partitions_stale((self._topic,))
        ):
            return (await self.publish((record,)))[0]
        if self._in_flight >= self._max_in_flight:
            raise Overloaded
        deadline = time.monotonic() + self._timeout_s
        try:
            future = framer.append(self._topic, record.key, record.value, record.headers)
        except (KafkaError, OSError) as exc:
            log.warning("could not hand records to the producer: %r", exc)
            return Outcome.UNAVAILABLE
        self._track([uid], future)
        await self._batch_settled(future, deadline)
        return _outcome(future, duplicate=False)

    async def _send(
        self,
        framer: Framer,
        *,
        records: Sequence[Record],
        fresh: list[int],
        waits: list[tuple[int, asyncio.Future[Any], bool]],
        outcomes: list[Outcome | None],
        deadline: float,
    ) -> None:
        groups: dict[asyncio.Future[Any], list[str]] = {}
        try:
            topics = (self._topic,)
            if framer.partitions_stale(topics):
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await framer.refresh_partitions(topics)
            framer.prepare([records[index].key for index in fresh])
            for index in fresh:
                record = records[index]
                future = framer.append(self._topic, record.key, record.value, record.headers)
                groups.setdefault(future, []).append(record.uid)
                waits.append((index, future, False))
        except (TimeoutError, KafkaError, OSError) as exc:
            # Records not handed over are refused; those handed over are awaited by the caller.
            log.warning("could not hand records to the producer: %r", exc)
            handed = {index for index, _, _ in waits}
            for index in fresh:
                if index not in handed:
                    outcomes[index] = Outcome.UNAVAILABLE
        finally:
            for future, uids in groups.items():
                self._track(uids, future)

    def _track(self, uids: list[str], future: asyncio.Future[Any]) -> None:
        # One entry and one done-callback per Kafka batch, shared by every request in it.
        tracked = self._batches.get(future)
        if tracked is None:
            tracked = self._batches[future] = _Tracked()
            future.add_done_callback(self._settle)
        for uid in uids:
            self._pending[uid] = future
        tracked.uids.extend(uids)
        self._in_flight += len(uids)

    async def _batch_settled(self, future: asyncio.Future[Any], deadline: float) -> None:
        """Wait until the batch `future` settled or `deadline` (time.monotonic) passed.

        Every request waiting on one batch shares one timer, armed with the first waiter's
        deadline: the others joined the batch within its linger time (milliseconds), so they
        are answered at most that much before their own deadline, never after it. Each request
        awaits a future of its own, so a cancelled request cancels nobody else's wait.
        """
        tracked = self._batches.get(future)
        if tracked is None or future.done():
            return
        # The batch's loop is the running one; `asyncio.get_running_loop()` would cost a
        # getpid system call per request on Python 3.11.
        loop = future.get_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        tracked.waiters.append(waiter)
        if tracked.timer is None:
            tracked.timer = loop.call_later(
                max(0.0, deadline - time.monotonic()), _wake, tracked, True
            )
        await waiter

    def _settle(self, future: asyncio.Future[Any]) -> None:
        tracked = self._batches.pop(future)
        _wake(tracked, False)
        uids = tracked.uids
        for uid in uids:
            if self._pending.get(uid) is future:
                del self._pending[uid]
        self._in_flight -= len(uids)
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self._memo.add_all(uids)
        else:
            log.warning("Kafka did not acknowledge %d record(s): %r", len(uids), error)


@dataclass(slots=True)
class _Tracked:
    """A Kafka batch in flight: the uids of its records and the requests waiting on it."""

    uids: list[str] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


def _outcome(future: asyncio.Future[Any], *, duplicate: bool) -> Outcome:
    """A record's outcome once its batch's `future` settled or its deadline passed."""
    if future.done() and not future.cancelled() and future.exception() is None:
        return Outcome.DUPLICATE if duplicate else Outcome.ACCEPTED
    return Outcome.UNAVAILABLE


def _wake(tracked: _Tracked, expired: bool) -> None:
    """Release the batch's waiters: it settled, or (`expired`) its deadline passed."""
    if tracked.timer is not None:
        if not expired:
            tracked.timer.cancel()
        tracked.timer = None
    for waiter in tracked.waiters:
        if not waiter.done():
            waiter.set_result(None)
    tracked.waiters.clear()


async def _settled(futures: set[asyncio.Future[Any]], timeout_s: float) -> None:
    """Wait until every future is done or `timeout_s` passed; never cancels them.

    `asyncio.wait` does the same with more bookkeeping, which shows on the hot path.
    """
    pending = [future for future in futures if not future.done()]
    if not pending or timeout_s <= 0:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    left = len(pending)

    def on_done(_: asyncio.Future[Any]) -> None:
        nonlocal left
        left -= 1
        if left == 0 and not waiter.done():
            waiter.set_result(None)

    def on_timeout() -> None:
        if not waiter.done():
            waiter.set_result(None)

    for future in pending:
        future.add_done_callback(on_done)
    timer = loop.call_later(timeout_s, on_timeout)
    try:
        await waiter
    finally:
        timer.cancel()
        for future in pending:
            future.remove_done_callback(on_done)

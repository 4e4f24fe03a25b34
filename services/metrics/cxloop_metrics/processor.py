"""The consumer of `cx.feedback.enriched.v1`: counts each event once into the buckets.

`handle` runs one PostgreSQL transaction per batch that locks the partitions' offset rows,
skips records below the stored positions (a stale owner after a rebalance), inserts the event
uids not seen before, upserts the minute, hour, day and week buckets of those events and advances
the positions. Either all of that commits or none of it, so a kill -9 at any instant neither
loses nor double-counts: on restart the runner seeks to the stored positions.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import threading
import unicodedata
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from aiokafka import TopicPartition
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_metrics import repository
from cxloop_metrics.buckets import MINUTE, EventBuckets, event_buckets, floor_minute
from cxloop_metrics.labels import LabelLimiter
from cxruntime.consumer import Consumed, Decoded, InvalidMessage, Positions, Produce
from cxruntime.db import make_engine, make_sessionmaker
from cxschema import decode_enriched, feedback_uid

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RESPONSES = Counter(
    "cx_feedback_responses_total",
    "Feedback events counted into the KPIs, by channel and touchpoint (bounded).",
    ["channel", "touchpoint"],
)
EVENTS = Counter(
    "cx_metrics_events_total",
    "Enriched events seen by the metrics consumer, by outcome: counted, duplicate (uid seen "
    "before), replayed (below the stored position), late (past the lateness: no minute bucket).",
    ["outcome"],
)


class Observation(NamedTuple):
    """What the metrics need of one enriched event (a tuple: built once per event)."""

    uid: str
    occurred_at: datetime
    buckets: EventBuckets
    touchpoint: str
    channel: str
    journey_stage: str
    region: str
    segment: str
    nps: int | None
    csat: int | None
    ces: int | None
    sentiment: float | None
    negative: bool


class BucketCache:
    """`event_buckets` memoised per UTC minute: a stream's events share a few minutes."""

    def __init__(self, tz: ZoneInfo, *, max_entries: int = 4096) -> None:
        self._tz = tz
        self._max_entries = max_entries
        self._cache: dict[int, EventBuckets] = {}

    def __call__(self, occurred_at: datetime) -> EventBuckets:
        # Keyed by the minute's number since the epoch: exact integer arithmetic, and a third
        # of the cost of building the minute's datetime for every event.
        minute = (occurred_at - _EPOCH) // MINUTE
        found = self._cache.get(minute)
        if found is None:
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            found = self._cache[minute] = event_buckets(floor_minute(occurred_at), self._tz)
        return found


_PLACEHOLDER: Final = re.compile(r"\[[A-Z][A-Z0-9_]*\]")


def says_something(comment: str | None) -> bool:
    """True when a comment holds a word, a number or a symbol (an emoji) once the enricher's
    placeholders ("[EMAIL]") are set aside: a comment that was only an e-mail address, or
    only ".", carries no opinion, and its neutral 0 must not pull the sentiment KPIs."""
    if not comment:
        return False
    text = _PLACEHOLDER.sub(" ", comment) if "[" in comment else comment
    return any(char.isalnum() or unicodedata.category(char)[0] == "S" for char in text)


def observe(value: bytes | None, buckets: BucketCache) -> Observation:
    """Decode an enriched record into an `Observation`, or raise `InvalidMessage`."""
    if value is None:
        raise InvalidMessage("empty record value")
    try:
        event = decode_enriched(value)
    except ValidationError as exc:
        raise InvalidMessage(f"not a FeedbackEnriched event: {exc}") from exc
    commented = says_something(event.comment)
    customer = event.customer
    return Observation(
        uid=feedback_uid(event.source, event.id),
        occurred_at=event.occurred_at,
        buckets=buckets(event.occurred_at),
        touchpoint=event.touchpoint,
        channel=event.channel,
        journey_stage=event.journey_stage,
        region=(customer.region or "") if customer else "",
        segment=(customer.segment or "") if customer else "",
        nps=event.scores.nps,
        csat=event.scores.csat,
        ces=event.scores.ces,
        sentiment=event.sentiment.score if commented else None,
        negative=commented and event.sentiment.label == "negative",
    )


def to_row(
    obs: Observation, *, now: datetime, lateness: timedelta, hour_retention: timedelta
) -> repository.EventRow:
    """The bucket row of an observation: too-late events skip the minute buckets."""
    b = obs.buckets
    return repository.EventRow(
        uid=obs.uid,
        minute=b.minute if obs.occurred_at >= now - lateness else None,
        hour=b.hour if b.hour >= now - hour_retention else None,
        day=b.day,
        week=b.week,
        touchpoint=obs.touchpoint,
        channel=obs.channel,
        journey_stage=obs.journey_stage,
        region=obs.region,
        segment=obs.segment,
        nps=obs.nps,
        csat=obs.csat,
        ces=obs.ces,
        sentiment=obs.sentiment,
        negative=obs.negative,
    )


Record = tuple[tuple[str, int], int, repository.EventRow]
"""(topic, partition), offset and bucket row of one record of a batch."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The events of a batch to count: below the stored positions skipped, uids once."""

    rows: list[repository.EventRow]
    replayed: int
    duplicates: int


def select_events(records: Sequence[Record], stored: Mapping[tuple[str, int], int]) -> Selection:
    """Skip records below their partition's stored position (already counted by an earlier
    owner), then keep the first record of each uid."""
    rows: dict[str, repository.EventRow] = {}
    replayed = duplicates = 0
    for tp, offset, row in records:
        if offset < stored.get(tp, 0):
            replayed += 1
        elif row.uid in rows:
            duplicates += 1
        else:
            rows[row.uid] = row
    return Selection(list(rows.values()), replayed, duplicates)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A batch ready for the database: its records, the positions after it, and the columns
    to bind when no record turns out to be below the stored positions (the usual case)."""

    records: list[Record]
    positions: dict[tuple[str, int], int]
    first_offsets: dict[tuple[str, int], int]
    selection: Selection
    columns: repository.EventColumns


def merge_pending(parts: Sequence[_Pending]) -> _Pending:
    """Consecutive batches as one: records in order, the furthest positions, uids once."""
    if len(parts) == 1:
        return parts[0]
    records = [record for part in parts for record in part.records]
    positions: dict[tuple[str, int], int] = {}
    first_offsets: dict[tuple[str, int], int] = {}
    for part in parts:
        for tp, offset in part.positions.items():
            positions[tp] = max(positions.get(tp, offset), offset)
        for tp, offset in part.first_offsets.items():
            first_offsets[tp] = min(first_offsets.get(tp, offset), offset)
    selection = select_events(records, {})
    if selection.duplicates == sum(part.selection.duplicates for part in parts):
        # No uid repeats across the parts: their selections, in order, are the merged one.
        columns = repository.concat_event_columns([part.columns for part in parts])
    else:
        columns = repository.event_columns(selection.rows)
    return _Pending(records, positions, first_offsets, selection, columns)


class WriterFailed(RuntimeError):
    """The bucket writer gave up; the process must restart from the stored positions."""


class MetricsProcessor:
    """`Processor` and `OffsetStore` of the metrics consumer, and its pipelined bucket writer.

    Run alone, `handle` writes each batch before it returns. When `run()` is running as a
    worker beside the consumer, `handle` only prepares the batch and hands it to the writer,
    so decoding and the database work overlap. Batches that arrive while the writer is busy
    are merged into its next transaction, up to `max_write` events (a group commit): under
    load transactions grow, which writes fewer bucket rows per event, while the runner's
    batches, and so the time its synchronous decoding holds the event loop the HTTP API
    shares, stay small.

    The writer runs on a thread of its own, with its own event loop and its own database
    connection (`writer_dsn`): on the consumer's loop, each of its round trips waited for the
    consumer to finish decoding a whole batch (tens of milliseconds of Python that never
    yields), which left PostgreSQL idle for most of each batch. Batches are written strictly
    in the order `handle` received them. Each transaction still holds the buckets and the
    positions together, and the stored positions are authoritative: the runner's Kafka commit
    may run ahead of them, and a crash then costs a re-read from the stored positions, never a
    loss or a double count.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        tz: ZoneInfo,
        lateness: timedelta,
        hour_retention: timedelta,
        touchpoint_labels: LabelLimiter,
        writer_dsn: str | None = None,
        max_write: int = 5000,
        write_attempts: int = 5,
    ) -> None:
        self._sessions = sessions
        self._buckets = BucketCache(tz)
        self._lateness = lateness
        self._hour_retention = hour_retention
        self._touchpoint_labels = touchpoint_labels
        self._writer_dsn = writer_dsn
        self._max_write = max_write
        self._write_attempts = write_attempts
        self._writer: _WriterThread | None = None
        self._writing: asyncio.Future[None] | None = None
        self._open: list[_Pending] = []
        self._open_records = 0
        self._writing_here = asyncio.Lock()
        """Held by every write on this loop's sessions, so those too commit in order."""
        self._failure: BaseException | None = None

    def decode(self, record: Consumed) -> Observation:
        """See `observe`."""
        return observe(record.value, self._buckets)

    async def handle(
        self, batch: Sequence[Decoded[Observation]], positions: Positions
    ) -> Sequence[Produce]:
        """Count the batch and store `positions` in one transaction (now, or handed to the
        running writer); produces nothing."""
        self._raise_if_failed()
        if not positions:
            return []
        pending = self._prepare(batch, positions)
        while True:
            self._raise_if_failed()
            writer = self._writer
            if writer is None or not writer.accepting:
                # Never overtake a batch the writer still holds: positions only move forward,
                # so a later batch committed first would make the earlier one look replayed.
                await self.flush()
                async with self._writing_here:
                    await self._write(self._sessions, pending)
                return []
            writing = self._writing
            if writing is None or self._open_records + len(pending.records) <= self._max_write:
                break
            # The next transaction is full: wait for the current one (which hands it over).
            await self._settle(writing)
        self._open.append(pending)
        self._open_records += len(pending.records)
        if self._writing is None:
            self._dispatch(writer)
        return []

    def _prepare(self, batch: Sequence[Decoded[Observation]], positions: Positions) -> _Pending:
        now = datetime.now(UTC)
        records: list[Record] = []
        first_offsets: dict[tuple[str, int], int] = {}
        for item in batch:
            tp = (item.record.topic, item.record.partition)
            offset = item.record.offset
            if offset < first_offsets.get(tp, offset + 1):
                first_offsets[tp] = offset
            row = to_row(
                item.value, now=now, lateness=self._lateness, hour_retention=self._hour_retention
            )
            records.append((tp, offset, row))
        selection = select_events(records, {})
        return _Pending(
            records=records,
            positions={(tp.topic, tp.partition): offset for tp, offset in positions.items()},
            first_offsets=first_offsets,
            selection=selection,
            columns=repository.event_columns(selection.rows),
        )

    def _take_open(self) -> _Pending:
        merged = merge_pending(self._open)
        self._open = []
        self._open_records = 0
        return merged

    def _dispatch(self, writer: _WriterThread) -> None:
        writing = self._writing = writer.submit(self._take_open())
        writing.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[None]) -> None:
        if future is not self._writing:
            return
        self._writing = None
        if future.cancelled() or future.exception() is not None:
            self._failure = WriterFailed("a bucket write did not complete")
            if not future.cancelled():
                self._failure = future.exception()
            return
        writer = self._writer
        if self._open and writer is not None and writer.accepting:
            self._dispatch(writer)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise WriterFailed("the bucket writer failed; restart") from self._failure

    async def _settle(self, future: asyncio.Future[None]) -> None:
        try:
            await future
        except BaseException as exc:
            self._failure = exc
            raise WriterFailed("the bucket writer failed; restart") from exc

    async def run(self) -> None:
        """The pipelined writer: commit handed-over batches in order until `stop()`.

        Retries a failing transaction with backoff; after `write_attempts` it raises, so the
        process exits and restarts from the stored positions.
        """
        if self._writer_dsn is None:
            raise RuntimeError("the pipelined writer needs writer_dsn")
        writer = _WriterThread(self._writer_dsn, self._write_with_retry)
        self._writer = writer
        try:
            await writer.run()
        except BaseException as exc:
            if self._failure is None and not isinstance(exc, asyncio.CancelledError):
                self._failure = exc
            raise
        finally:
            writer.stop()
        # Batches handed over after `stop()` was asked wait for no writer: commit them here.
        await self.flush()

    def stop(self) -> None:
        """Finish the batches handed over and return from `run()`."""
        if self._writer is not None:
            self._writer.stop()

    async def flush(self) -> None:
        """Wait until every batch handed over is committed (writing the ones no running writer
        will take on this loop)."""
        while self._writing is not None or self._open:
            self._raise_if_failed()
            if self._writing is not None:
                await self._settle(self._writing)
                continue
            async with self._writing_here:
                if self._writing is None and self._open:
                    await self._write(self._sessions, self._take_open())

    async def _write_with_retry(
        self, sessions: async_sessionmaker[AsyncSession], pending: _Pending
    ) -> None:
        for attempt in range(1, self._write_attempts + 1):
            try:
                await self._write(sessions, pending)
                return
            except (SQLAlchemyError, OSError):
                if attempt == self._write_attempts:
                    raise
                log.warning("bucket write failed (attempt %d); retrying", attempt, exc_info=True)
                await asyncio.sleep(min(5.0, 0.2 * 2 ** (attempt - 1)))

    async def _write(self, sessions: async_sessionmaker[AsyncSession], pending: _Pending) -> None:
        selection, columns = pending.selection, pending.columns
        async with sessions() as session, session.begin():
            stored = await repository.lock_positions(session, pending.positions.keys())
            if any(first < stored.get(tp, 0) for tp, first in pending.first_offsets.items()):
                selection = select_events(pending.records, stored)
                columns = repository.event_columns(selection.rows)
            counted = await repository.apply_batch(session, columns, pending.positions)
        total = 0
        late = sum(1 for row in selection.rows if row.minute is None)
        per_label: collections.Counter[tuple[str, str]] = collections.Counter()
        for channel, touchpoint, n in counted:
            per_label[(channel, self._touchpoint_labels(touchpoint))] += n
            total += n
        for (channel, touchpoint), n in per_label.items():
            RESPONSES.labels(channel, touchpoint).inc(n)
        EVENTS.labels("counted").inc(total)
        EVENTS.labels("duplicate").inc(selection.duplicates + len(selection.rows) - total)
        EVENTS.labels("replayed").inc(selection.replayed)
        EVENTS.labels("late").inc(late)

    async def load(self, partitions: Collection[TopicPartition]) -> Positions:
        """Stored positions for `partitions`, 0 where none is stored: the database, not Kafka's
        committed offsets, decides where counting resumes (the runner seeks there)."""
        async with self._sessions() as session:
            found = await repository.load_positions(
                session, [(tp.topic, tp.partition) for tp in partitions]
            )
        return {tp: found.get((tp.topic, tp.partition), 0) for tp in partitions}

    async def reset(self, positions: Positions) -> None:
        """Store `positions` even where they lie before the stored ones (the runner found the
        partition's log replaced): otherwise `handle` would skip its records as replays."""
        async with self._sessions() as session, session.begin():
            await repository.reset_positions(
                session, {(tp.topic, tp.partition): n for tp, n in positions.items()}
            )


class _WriterThread:
    """Runs `write(sessions, pending)` for each submitted batch, in order, on a thread with its
    own event loop and a one-connection engine on `dsn`; results go back to the caller's loop."""

    def __init__(
        self,
        dsn: str,
        write: Callable[[async_sessionmaker[AsyncSession], _Pending], Awaitable[None]],
    ) -> None:
        self._dsn = dsn
        self._write = write
        self._caller: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[_Pending, asyncio.Future[None]] | None] | None = None
        self.accepting = False

    async def run(self) -> None:
        """Start the thread and wait until it ends (after `stop()` or a failed batch)."""
        self._caller = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._caller.create_future()
        ended: asyncio.Future[None] = self._caller.create_future()
        thread = threading.Thread(
            target=self._main, args=(ready, ended), name="metrics-writer", daemon=True
        )
        thread.start()
        await ready
        self.accepting = True
        try:
            await ended
        finally:
            self.accepting = False

    def submit(self, pending: _Pending) -> asyncio.Future[None]:
        """Queue a batch; the future completes once it is committed (or has failed)."""
        assert self._caller is not None
        done: asyncio.Future[None] = self._caller.create_future()
        loop, queue = self._loop, self._queue
        try:
            if loop is None or queue is None:
                raise RuntimeError("the writer thread has ended")
            loop.call_soon_threadsafe(queue.put_nowait, (pending, done))
        except RuntimeError as exc:  # its loop closed between the check and the call
            _settle_future(done, WriterFailed(str(exc)))
        return done

    def stop(self) -> None:
        """Write what was submitted, then end the thread."""
        self.accepting = False
        if self._loop is not None and self._queue is not None:
            with contextlib.suppress(RuntimeError):  # the thread's loop is closed already
                self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    def _main(self, ready: asyncio.Future[None], ended: asyncio.Future[None]) -> None:
        assert self._caller is not None
        caller = self._caller
        try:
            asyncio.run(self._drain(ready))
        except BaseException as exc:
            caller.call_soon_threadsafe(_settle_future, ready, exc)
            caller.call_soon_threadsafe(_settle_future, ended, exc)
        else:
            caller.call_soon_threadsafe(_settle_future, ended, None)

    async def _drain(self, ready: asyncio.Future[None]) -> None:
        assert self._caller is not None
        caller = self._caller
        self._loop = asyncio.get_running_loop()
        queue = self._queue = asyncio.Queue()
        engine = make_engine(self._dsn, pool_size=1, max_overflow=0)
        sessions = make_sessionmaker(engine)
        caller.call_soon_threadsafe(_settle_future, ready, None)
        try:
            while (item := await queue.get()) is not None:
                pending, done = item
                try:
                    await self._write(sessions, pending)
                except BaseException as exc:
                    caller.call_soon_threadsafe(_settle_future, done, exc)
                    # Nothing after a failed batch may commit: fail what is queued behind it.
                    while not queue.empty():
                        rest = queue.get_nowait()
                        if rest is not None:
                            caller.call_soon_threadsafe(_settle_future, rest[1], exc)
                    raise
                caller.call_soon_threadsafe(_settle_future, done, None)
        finally:
            self._loop = None
            await engine.dispose()


def _settle_future(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
        # One failure fails every batch behind it and `run()` raises it; the futures nobody
        # awaits any more must not each log it again when collected.
        future.exception()

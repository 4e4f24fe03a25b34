"""The consumer runner every consuming service runs on.

A batch goes through a fixed chain of steps, each knowing only the next:

    decode -> (dead-letter the invalid) -> handle -> produce and await acks -> commit

Commit is the last step by construction, so an offset is never committed before the work it
covers is durable. The acknowledgements of a batch are awaited while the next batch is decoded
and handled (one batch in flight): a batch's positions join the commit only once its own records
are acknowledged and every earlier batch's are. A batch whose records fail is produced again,
with backoff, before any later position can be committed; its records may then land after the
next batch's (at-least-once, as everywhere: sinks deduplicate). Nothing auto-commits; commits
are throttled by count and time and forced on partition revocation and on shutdown.

Two kinds of error:
- `InvalidMessage`, or any other exception, from `decode`: never retried (`decode` is pure).
  The original bytes go to the dead-letter topic with the reason, and the offset is committed.
  If the invalid share of a sliding window exceeds `max_invalid_ratio`, the runner stops with
  `DeadLetterRateExceeded` instead of dead-lettering everything (a broken deploy stops; it does
  not empty the topic).
- Anything else from `handle` or the producer: transient. Nothing is committed; the batch is
  retried with exponential backoff and, after `max_retries`, the runner raises so the process
  exits and the group rebalances.

Processors that keep their offsets in their own database (exactly-once sinks) pass an
`OffsetStore`: the runner seeks to the stored positions on every assignment, and `handle`
receives the positions to store in the same transaction as its writes.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import Counter, Gauge, Histogram

from cxruntime.framing import Framer
from cxruntime.kafka import read_to_end
from cxschema import INVALID, Headers, invalid_headers

log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

RECORDS = Counter(
    "cx_consumer_records_total",
    "Records the consumer runner finished, by outcome (processed or dead_lettered).",
    ["group", "topic", "outcome"],
)
BATCH_SECONDS = Histogram(
    "cx_consumer_batch_seconds",
    "Time to decode, handle and produce one batch, and to settle the acknowledgements of the "
    "batch before it.",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RETRIES = Counter(
    "cx_consumer_retries_total", "Batches retried after a transient error.", ["group"]
)
LAG = Gauge(
    "cx_consumer_lag",
    "Records between the partition's high watermark and the group's committed offset (where "
    "a restart would resume): it grows while a batch is retried, not only while records wait.",
    ["group", "topic", "partition"],
)
ASSIGNED = Gauge(
    "cx_consumer_assigned_partitions",
    "Partitions this process's consumer owns; the series appears once it has joined its group.",
    ["group"],
)
COMMITS = Counter("cx_consumer_commits_total", "Offset commits to Kafka.", ["group", "outcome"])
OFFSET_RESETS = Counter(
    "cx_consumer_offset_resets_total",
    "Stored positions outside their partition's log (after_end: the log was replaced; "
    "before_start: retention deleted unread records), read from the log's start instead.",
    ["group", "topic", "reason"],
)


class InvalidMessage(Exception):
    """A record that can never be processed; it goes to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeadLetterRateExceeded(RuntimeError):
    """Too large a share of recent records was invalid; the runner stops rather than drain."""


@dataclass(frozen=True, slots=True)
class Consumed:
    """One record as read from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Produce:
    """One record to write; the runner waits for its acknowledgement before committing."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T_co]):
    """A record and what `decode` made of it."""

    record: Consumed
    value: T_co


@dataclass(slots=True)
class _Attempt(Generic[T]):
    """A decoded batch on its way out, and how far it got (kept across retries)."""

    decoded: list[Decoded[T]]
    dead: list[Produce]
    positions: dict[TopicPartition, int]
    count: int
    produced: list[Produce] | None = None  # dead letters and `handle`'s records, once handled
    unacked: _Unacked | None = None  # once handed to the producer


@dataclass(slots=True)
class _Unacked:
    """A produced batch whose acknowledgements are still awaited."""

    deliveries: asyncio.Future[Any]
    records: list[Produce]
    positions: dict[TopicPartition, int]
    count: int


YIELD_EVERY = 200
"""Records decoded between two turns of the event loop."""

Positions = Mapping[TopicPartition, int]
"""For each partition, the offset of the next record to read (what Kafka calls committed)."""


class Processor(Protocol[T]):
    """The business side of a consumer: a pure `decode` and an idempotent `handle`."""

    def decode(self, record: Consumed) -> T:
        """Turn a record into a value, or raise `InvalidMessage`."""
        ...

    async def handle(self, batch: Sequence[Decoded[T]], positions: Positions) -> Sequence[Produce]:
        """Apply the batch (idempotently) and return the records to produce.

        `positions` are the offsets that will be committed once this returns and its records are
        acknowledged; processors with an `OffsetStore` store them in their own transaction.
        """
        ...


@runtime_checkable
class Preparing(Protocol):
    """A processor that does work for a whole batch ahead of `decode` (an optimisation: one
    call for many records where one per record costs several times more)."""

    async def prepare(self, records: Sequence[Consumed]) -> None:
        """Get ready to decode `records`; must not raise for any record (`decode` judges them)
        and must not change what `decode` returns."""
        ...


class OffsetStore(Protocol):
    """Where a processor keeps its own consumer positions (for exactly-once sinks)."""

    async def load(self, partitions: Collection[TopicPartition]) -> Positions:
        """Stored positions of these partitions; a partition absent here starts per the policy."""
        ...

    async def reset(self, positions: Positions) -> None:
        """Store these positions in place of the stored ones, also where they lie before them:
        the partition's log no longer holds the stored position (see `ConsumerRunner`)."""
        ...


@dataclass(frozen=True)
class RunnerConfig:
    """How a runner consumes; every field has a production default."""

    bootstrap: str
    group_id: str
    topics: tuple[str, ...]
    stage: str
    client_id: str = "cxloop"
    max_batch: int = 500
    poll_timeout_ms: int = 200
    # aiokafka's default (500 ms) is added to every hop's latency whenever a partition is idle.
    fetch_max_wait_ms: int = 100
    commit_every: int = 1000
    commit_interval_s: float = 1.0
    max_retries: int = 8
    retry_base_s: float = 0.2
    retry_max_s: float = 10.0
    max_invalid_ratio: float = 0.5
    invalid_window: int = 200
    auto_offset_reset: str = "earliest"
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    max_poll_interval_ms: int = 300_000


class ConsumerRunner(Generic[T]):
    """Runs one `Processor` on one consumer until `stop()`; see the module docstring."""

    def __init__(
        self,
        config: RunnerConfig,
        processor: Processor[T],
        producer: AIOKafkaProducer,
        *,
        offset_store: OffsetStore | None = None,
    ) -> None:
        self._config = config
        self._processor = processor
        self._producer = producer
        self._offset_store = offset_store
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pending: dict[TopicPartition, int] = {}
        self._since_commit = 0
        self._last_commit = time.monotonic()
        self._recent_invalid: collections.deque[bool] = collections.deque(
            maxlen=config.invalid_window
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._framer: Framer | None = None
        self._unacked: _Unacked | None = None
        self._lag_observed_at = 0.0
        # Per partition, the first offset not yet done: the last commit, or the first record
        # of the batch in progress when nothing was committed since the assignment.
        self._resume: dict[TopicPartition, int] = {}
        self.running = False

    @property
    def assignment(self) -> frozenset[TopicPartition]:
        """Partitions this runner currently owns."""
        if self._consumer is None:
            return frozenset()
        return frozenset(self._consumer.assignment())

    def stop(self) -> None:
        """Ask the runner to finish its batch, commit and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until `stop()`; raises on a fatal error after committing what is done."""
        cfg = self._config
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap,
            group_id=cfg.group_id,
            client_id=cfg.client_id,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            isolation_level="read_uncommitted",
            fetch_max_wait_ms=cfg.fetch_max_wait_ms,
        )
        consumer.subscribe(list(cfg.topics), listener=_Rebalance(self))
        self._consumer = consumer
        await consumer.start()
        self.running = True
        log.info("consumer %s started on %s", cfg.group_id, ", ".join(cfg.topics))
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(
                    timeout_ms=cfg.poll_timeout_ms, max_records=cfg.max_batch
                )
                records = [
                    _consumed(message)
                    for tp_messages in batches.values()
                    for message in tp_messages
                ]
                for tp, tp_messages in batches.items():
                    if tp_messages:  # in offset order
                        self._resume.setdefault(tp, tp_messages[0].offset)
                async with self._lock:
                    if records:
                        # Not retried as a whole: `_process` retries what a transient error
                        # undid, and gives up (raises) after `max_retries`.
                        await self._process(records)
                    else:
                        await self._with_retry(self._settle_in_flight)
                    await self._commit_if_due()
                await self._observe_lag(consumer)
        finally:
            self.running = False
            ASSIGNED.remove(cfg.group_id)
            try:
                async with self._lock:
                    try:
                        await self._settle_in_flight()
                    except Exception:
                        # Not acknowledged: its positions stay uncommitted and it is redone.
                        log.exception("the last batch was not acknowledged; it will be redone")
                    await self._commit(force=True)
            finally:
                await consumer.stop()
                self._consumer = None
                log.info("consumer %s stopped", cfg.group_id)

    async def _with_retry(self, step: Callable[[], Awaitable[None]]) -> None:
        cfg = self._config
        attempt = 0
        while True:
            try:
                await step()
                return
            except (InvalidMessage, DeadLetterRateExceeded):
                raise
            except Exception:
                attempt += 1
                if attempt > cfg.max_retries or self._stopping.is_set():
                    log.exception("batch failed %d times; giving up", attempt)
                    raise
                RETRIES.labels(cfg.group_id).inc()
                if self._consumer is not None:
                    await self._observe_lag(self._consumer)  # the lag grows while this lasts
                delay = min(cfg.retry_max_s, cfg.retry_base_s * 2 ** (attempt - 1))
                delay *= 0.5 + random.random()
                log.warning(
                    "batch failed (attempt %d), retrying in %.2fs", attempt, delay, exc_info=True
                )
                await asyncio.sleep(delay)

    async def _process(self, records: list[Consumed]) -> None:
        """Decode the batch once, then hand it on, retrying only what a transient error undid.

        `decode` is pure, so a retry does not repeat it (nor what it counts). `handle` is
        repeated only if it failed itself; once its records are with the producer they are not
        handed over again (an unacknowledged one is produced again when it is settled).
        """
        cfg = self._config
        started = time.perf_counter()
        decoded, dead = await self._decode(records)
        self._check_invalid_share()
        attempt = _Attempt(decoded, dead, _next_positions(records), len(records))
        await self._with_retry(functools.partial(self._ship, attempt))
        BATCH_SECONDS.labels(cfg.group_id).observe(time.perf_counter() - started)
        for topic, n in collections.Counter(r.record.topic for r in decoded).items():
            RECORDS.labels(cfg.group_id, topic, "processed").inc(n)
        if dead:
            RECORDS.labels(cfg.group_id, records[0].topic, "dead_lettered").inc(len(dead))

    async def _decode(self, records: list[Consumed]) -> tuple[list[Decoded[T]], list[Produce]]:
        """Each record decoded, or its dead letter."""
        decoded: list[Decoded[T]] = []
        dead: list[Produce] = []
        if isinstance(self._processor, Preparing):
            try:
                await self._processor.prepare(records)
            except Exception:  # an optimisation only: decode still sees every record
                log.exception("preparing a batch failed; decoding it record by record")
        stage = self._config.stage
        for index, record in enumerate(records):
            if index and not index % YIELD_EVERY:
                # Decoding a batch is CPU work without awaits; let the HTTP API answer between.
                await asyncio.sleep(0)
            try:
                decoded.append(Decoded(record, self._processor.decode(record)))
                self._recent_invalid.append(False)
                continue
            except InvalidMessage as exc:
                reason = exc.reason
            except Exception as exc:
                # `decode` is pure: a record it fails on now, it fails on in every retry and
                # every restart. Dead-lettered (under the cap), it stops nothing behind it.
                log.exception(
                    "decoding %s[%d] offset %d failed; dead-lettering the record",
                    record.topic,
                    record.partition,
                    record.offset,
                )
                reason = f"decoding failed: {type(exc).__name__}: {exc}"
            self._recent_invalid.append(True)
            dead.append(_dead_letter(record, reason, stage))
        return decoded, dead

    async def _ship(self, attempt: _Attempt[T]) -> None:
        """Handle the decoded batch and hand its records to the producer (each once, kept in
        `attempt` across retries), then settle the batch before it."""
        if attempt.produced is None:
            outputs = await self._processor.handle(attempt.decoded, attempt.positions)
            # Dead letters go with the outputs: if we crash after them, the batch is redone and
            # the dead letters repeat, which a reader of the dead-letter topic tolerates.
            attempt.produced = [*attempt.dead, *outputs]
        if attempt.unacked is None:
            produced = attempt.produced
            deliveries = await self._produce(produced)
            attempt.unacked = _Unacked(deliveries, produced, attempt.positions, attempt.count)
        # The previous batch's acknowledgements arrived while this one was worked on. Until it
        # is settled, this batch is not tracked: if settling fails, the previous batch's records
        # are produced again, this one stays in flight, and neither is committed.
        await self._settle_in_flight()
        self._unacked = attempt.unacked

    async def _settle_in_flight(self) -> None:
        """Wait for the batch in flight to be acknowledged; then its positions may be committed.

        If its records failed, they are handed to the producer again at once and the error is
        raised: the caller's retry, after its backoff, waits for the new attempt.
        """
        batch = self._unacked
        if batch is None:
            return
        try:
            await batch.deliveries
        except Exception:
            batch.deliveries = await self._produce(batch.records)
            raise
        self._unacked = None
        self._pending.update(batch.positions)
        self._since_commit += batch.count

    def _check_invalid_share(self) -> None:
        cfg = self._config
        window = self._recent_invalid
        if len(window) < min(cfg.invalid_window, 50):
            return
        share = sum(window) / len(window)
        if share > cfg.max_invalid_ratio:
            raise DeadLetterRateExceeded(
                f"{share:.0%} of the last {len(window)} records were invalid "
                f"(limit {cfg.max_invalid_ratio:.0%}); stopping instead of dead-lettering them all"
            )

    async def _produce(self, records: Sequence[Produce]) -> asyncio.Future[Any]:
        """Hand the records to the producer now; the future resolves once all are acknowledged."""
        if not records:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        framer = self._framer
        if framer is None:
            framer = self._framer = Framer(self._producer, linger_s=None)
        topics = {r.topic for r in records}
        if framer.partitions_stale(topics):
            await framer.refresh_partitions(topics)
        framer.prepare([r.key for r in records])
        deliveries = {framer.append(r.topic, r.key, r.value, list(r.headers)) for r in records}
        framer.flush()
        acknowledged = asyncio.gather(*deliveries)
        # Retrieved here so that an attempt superseded by a retry is not reported as unawaited.
        acknowledged.add_done_callback(_retrieve)
        return acknowledged

    async def _commit_if_due(self) -> None:
        cfg = self._config
        due = self._since_commit >= cfg.commit_every or (
            time.monotonic() - self._last_commit >= cfg.commit_interval_s
        )
        if due:
            await self._commit(force=False)

    async def _commit(self, *, force: bool, only: Collection[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None or not self._pending:
            self._last_commit = time.monotonic()
            return
        owned = consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self._pending.items()
            if tp in owned and (only is None or tp in only)
        }
        if offsets:
            try:
                await consumer.commit(offsets)
                COMMITS.labels(self._config.group_id, "ok").inc()
                self._resume.update(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError) as exc:
                COMMITS.labels(self._config.group_id, "failed").inc()
                # The records will be delivered again to whoever owns the partition now;
                # sinks are idempotent, so this costs work, not correctness.
                log.warning("commit failed (%s); records will be redelivered", exc)
                if force:
                    log.info("final commit failed; continuing shutdown")
        for tp in list(self._pending):
            if only is None or tp in only or tp not in owned:
                self._pending.pop(tp, None)
        self._since_commit = 0
        self._last_commit = time.monotonic()

    async def on_revoked(self, revoked: Collection[TopicPartition]) -> None:
        """Commit what is done for partitions about to move to another consumer."""
        async with self._lock:
            try:
                await self._settle_in_flight()
            except Exception:
                # Its positions stay uncommitted, so the new owners redo its records; it stays
                # in flight here and the next batch waits for it (or the runner gives up).
                log.exception("the batch in flight was not acknowledged before the rebalance")
            await self._commit(force=True, only=revoked)
        for tp in revoked:
            self._resume.pop(tp, None)
            labels = (self._config.group_id, tp.topic, str(tp.partition))
            if labels in LAG._metrics:
                LAG.remove(*labels)

    async def on_assigned(self, assigned: Collection[TopicPartition]) -> None:
        """Seek to the processor's own stored positions, when it keeps them; report the join."""
        if self._offset_store is not None and self._consumer is not None and assigned:
            positions = await self._offset_store.load(assigned)
            positions = await self._within_the_log(self._consumer, positions)
            for tp, offset in positions.items():
                self._consumer.seek(tp, offset)
            log.info("seeked %d partitions to stored positions", len(positions))
        ASSIGNED.labels(self._config.group_id).set(len(assigned))

    async def _within_the_log(
        self, consumer: AIOKafkaConsumer, positions: Positions
    ) -> dict[TopicPartition, int]:
        """Stored positions, each moved to the start of its partition's log where the log no
        longer holds it.

        A position beyond the log's end means the log was replaced: the topic was deleted and
        created again, or the broker lost it (the embedded broker keeps topics in memory, so
        after `cxloop up` restarts, a sink's stored positions point past every new record).
        Kafka answers a fetch there with OFFSET_OUT_OF_RANGE, which aiokafka resolves by its
        reset policy, silently; the embedded broker answers with nothing until the log grows
        past the position, and every record before it would be skipped. A position before the
        log's start means retention deleted records that were never read. Either way the
        partition is read from the start of what its log holds, loudly.
        """
        checked = dict(positions)
        moved: dict[TopicPartition, int] = {}
        if not checked:
            return checked
        partitions = list(checked)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        group = self._config.group_id
        for tp, stored in positions.items():
            start, end = starts[tp], ends[tp]
            if stored > end:  # the reported end may be short of the last batch's records
                end = await _true_end(self._config.bootstrap, tp, end, start, stored)
            if start <= stored <= end:
                continue
            reason = "after_end" if stored > end else "before_start"
            log.warning(
                "stored position %d of %s[%d] lies %s of the log (%d to %d): %s; reading "
                "the partition from offset %d",
                stored,
                tp.topic,
                tp.partition,
                "after the end" if stored > end else "before the start",
                start,
                end,
                "the topic was created again or the broker lost its log"
                if stored > end
                else "retention deleted records that were never read",
                start,
            )
            OFFSET_RESETS.labels(group, tp.topic, reason).inc()
            checked[tp] = start
            moved[tp] = start
        if moved and self._offset_store is not None:
            # A sink that skips records below its stored positions must forget them first.
            await self._offset_store.reset(moved)
        return checked

    async def _observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._lag_observed_at < 1.0:
            return
        self._lag_observed_at = now
        group = self._config.group_id
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            # From what is done, not from the fetch position: the consumer fetches ahead, so a
            # batch failing again and again would show no lag at all.
            done = self._resume.get(tp)
            if done is None:  # nothing taken from this partition since it was assigned
                try:
                    done = await consumer.position(tp)
                except (IllegalStateError, KafkaError):
                    continue
            LAG.labels(group, tp.topic, str(tp.partition)).set(max(0, high - done))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner[Any]) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._runner.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        await self._runner.on_assigned(assigned)


async def _true_end(
    bootstrap: str, tp: TopicPartition, reported_end: int, start: int, until: int
) -> int:
    """`read_to_end` with a reader of its own: the runner's consumer is in its rebalance."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="cxloop-log-end"
    )
    await reader.start()
    try:
        reader.assign([tp])
        return await read_to_end(reader, tp, reported_end, start, until=until)
    finally:
        await reader.stop()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _consumed(message: Any) -> Consumed:
    return Consumed(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
        timestamp_ms=message.timestamp,
    )


def _next_positions(records: Sequence[Consumed]) -> dict[TopicPartition, int]:
    ends: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        if record.offset >= ends.get(key, 0):
            ends[key] = record.offset + 1
    return {TopicPartition(topic, partition): end for (topic, partition), end in ends.items()}


def _dead_letter(record: Consumed, reason: str, stage: str) -> Produce:
    return Produce(
        topic=INVALID,
        value=record.value or b"",
        key=record.key,
        headers=invalid_headers(
            record.headers,
            reason=reason,
            stage=stage,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        ),
    )

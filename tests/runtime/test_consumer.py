"""The consumer runner against a real broker: order of steps, dead letters, commits, seeks."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY

from cxruntime.consumer import (
    Consumed,
    ConsumerRunner,
    DeadLetterRateExceeded,
    Decoded,
    InvalidMessage,
    Positions,
    Produce,
    RunnerConfig,
)
from cxruntime.embedded import EmbeddedKafka
from cxruntime.kafka import make_producer
from cxschema import ENRICHED, INVALID, RAW, header_value

pytestmark = pytest.mark.integration


class Doubler:
    """Decodes {"n": int}; produces {"n": 2n} to ENRICHED; fails `failures` times first."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.handled: list[int] = []
        self.positions: list[dict[TopicPartition, int]] = []
        self.decoded = 0

    def decode(self, record: Consumed) -> int:
        self.decoded += 1
        try:
            return int(orjson.loads(record.value or b"")["n"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidMessage(f"not a number record: {exc}") from exc

    async def handle(
        self, batch: Sequence[Decoded[int]], positions: Positions
    ) -> Sequence[Produce]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("sink unavailable")
        self.handled.extend(item.value for item in batch)
        self.positions.append(dict(positions))
        return [
            Produce(ENRICHED, orjson.dumps({"n": item.value * 2}), key=item.record.key)
            for item in batch
        ]


async def _produce(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send_and_wait(RAW, value, key=str(i % 5).encode())
    finally:
        await producer.stop()


async def _read_all(
    bootstrap: str, topic: str, expect: int, timeout_s: float = 10
) -> list[Consumed]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[Consumed] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                out.extend(
                    Consumed(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.key,
                        m.value,
                        tuple(m.headers),
                        m.timestamp,
                    )
                    for m in messages
                )
        await asyncio.sleep(0.3)
        for messages in (await consumer.getmany(timeout_ms=200)).values():
            out.extend(
                Consumed(
                    m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp
                )
                for m in messages
            )
    finally:
        await consumer.stop()
    return out


def _config(bootstrap: str, **overrides: object) -> RunnerConfig:
    base = {
        "bootstrap": bootstrap,
        "group_id": "test-group",
        "topics": (RAW,),
        "stage": "test",
        "commit_interval_s": 0.1,
        "retry_base_s": 0.01,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 500,
    }
    base.update(overrides)
    return RunnerConfig(**base)  # type: ignore[arg-type]


async def _run_until(runner: ConsumerRunner[int], condition: object, timeout_s: float = 15) -> None:
    task = asyncio.create_task(runner.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not condition() and asyncio.get_running_loop().time() < deadline:  # type: ignore[operator]
            if task.done():
                await task
            await asyncio.sleep(0.05)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 15)


async def _committed(bootstrap: str, group: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(RAW) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(RAW) or set()
        result = {}
        for p in partitions:
            offset = await consumer.committed(TopicPartition(RAW, p))
            if offset is not None:
                result[p] = offset
        return result
    finally:
        await consumer.stop()


async def test_processes_dead_letters_and_commits(kafka: EmbeddedKafka) -> None:
    values = [orjson.dumps({"n": i}) for i in range(20)]
    values.insert(7, b"\xff not json")
    await _produce(kafka.bootstrap, values)
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = Doubler()
    runner = ConsumerRunner(_config(kafka.bootstrap), processor, producer)
    await _run_until(runner, lambda: len(processor.handled) >= 20)
    await producer.stop()

    assert sorted(processor.handled) == list(range(20))
    outputs = await _read_all(kafka.bootstrap, ENRICHED, 20)
    assert sorted(orjson.loads(r.value or b"")["n"] for r in outputs) == [2 * i for i in range(20)]
    dead = await _read_all(kafka.bootstrap, INVALID, 1)
    assert len(dead) == 1
    assert dead[0].value == b"\xff not json"
    assert "not a number record" in (header_value(dead[0].headers, "cx_error_reason") or "")
    assert header_value(dead[0].headers, "cx_error_topic") == RAW
    assert header_value(dead[0].headers, "cx_error_stage") == "test"
    committed = await _committed(kafka.bootstrap, "test-group")
    assert sum(committed.values()) == 21


class BuggyDoubler(Doubler):
    """A Doubler whose `decode` has a bug: it raises for 13."""

    def decode(self, record: Consumed) -> int:
        value = super().decode(record)
        if value == 13:
            raise OverflowError("date value out of range")
        return value


async def test_a_record_decode_raises_on_is_dead_lettered_not_retried(
    kafka: EmbeddedKafka,
) -> None:
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(20)])
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = BuggyDoubler()
    runner = ConsumerRunner(_config(kafka.bootstrap), processor, producer)
    await _run_until(runner, lambda: len(processor.handled) >= 19)
    await producer.stop()
    # `decode` is pure: retrying cannot help, so the record goes to the dead letters with what
    # went wrong, and everything behind it is processed.
    assert sorted(processor.handled) == [i for i in range(20) if i != 13]
    assert processor.decoded == 20
    dead = await _read_all(kafka.bootstrap, INVALID, 1)
    assert [orjson.loads(r.value or b"") for r in dead] == [{"n": 13}]
    reason = header_value(dead[0].headers, "cx_error_reason") or ""
    assert reason == "decoding failed: OverflowError: date value out of range"
    assert sum((await _committed(kafka.bootstrap, "test-group")).values()) == 20


class PreparingDoubler(Doubler):
    """A Doubler that is shown each batch before decoding it, and may fail at that."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.prepared: list[bytes | None] = []
        self.late: list[bytes | None] = []  # decoded without having been prepared first

    async def prepare(self, records: Sequence[Consumed]) -> None:
        self.prepared.extend(record.value for record in records)
        if self.fail:
            raise RuntimeError("prepare broke")

    def decode(self, record: Consumed) -> int:
        if record.value not in self.prepared:
            self.late.append(record.value)
        return super().decode(record)


@pytest.mark.parametrize("fail", [False, True])
async def test_a_preparing_processor_sees_each_batch_before_decoding_it(
    kafka: EmbeddedKafka, fail: bool
) -> None:
    values = [orjson.dumps({"n": i}) for i in range(12)] + [b"\xff not json"]
    await _produce(kafka.bootstrap, values)
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = PreparingDoubler(fail=fail)
    runner = ConsumerRunner(_config(kafka.bootstrap), processor, producer)
    await _run_until(runner, lambda: len(processor.handled) >= 12)
    await producer.stop()
    # Every record, the invalid one included, was shown to prepare once, before it was
    # decoded; a failing prepare costs nothing but the optimisation.
    assert sorted(processor.prepared) == sorted(values)
    assert processor.late == []
    assert sorted(processor.handled) == list(range(12))
    assert len(await _read_all(kafka.bootstrap, INVALID, 1)) == 1
    assert sum((await _committed(kafka.bootstrap, "test-group")).values()) == len(values)


async def test_restart_resumes_after_the_last_commit(kafka: EmbeddedKafka) -> None:
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(10)])
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    first = Doubler()
    await _run_until(
        ConsumerRunner(_config(kafka.bootstrap), first, producer), lambda: len(first.handled) >= 10
    )
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(10, 15)])
    second = Doubler()
    await _run_until(
        ConsumerRunner(_config(kafka.bootstrap), second, producer), lambda: len(second.handled) >= 5
    )
    await producer.stop()
    assert sorted(second.handled) == list(range(10, 15))


async def test_transient_errors_are_retried_without_commit(kafka: EmbeddedKafka) -> None:
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(5)])
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = Doubler(failures=2)
    await _run_until(
        ConsumerRunner(_config(kafka.bootstrap), processor, producer),
        lambda: len(processor.handled) >= 5,
    )
    await producer.stop()
    assert sorted(processor.handled) == list(range(5))
    # `handle` failed twice and was retried; `decode` is pure and ran once per record.
    assert processor.decoded == 5
    outputs = await _read_all(kafka.bootstrap, ENRICHED, 5)
    assert len(outputs) == 5


async def test_a_lasting_error_stops_the_runner_after_max_retries(kafka: EmbeddedKafka) -> None:
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(5)])
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = Doubler(failures=1000)
    runner = ConsumerRunner(_config(kafka.bootstrap, max_retries=2), processor, producer)
    try:
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(runner.run(), 30)
    finally:
        await producer.stop()
    # One attempt and two retries, then the runner raises (so the process exits and the group
    # rebalances); the batch is not started over with a fresh set of retries.
    assert processor.failures == 1000 - 3
    assert await _committed(kafka.bootstrap, "test-group") == {}


async def test_the_lag_grows_while_a_batch_fails(kafka: EmbeddedKafka) -> None:
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(6)])
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = Doubler(failures=1000)
    config = _config(kafka.bootstrap, group_id="lag-group", max_retries=3, retry_base_s=0.4)
    try:
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(ConsumerRunner(config, processor, producer).run(), 30)
    finally:
        await producer.stop()
    # The consumer had fetched the records (its position is past them), yet none is done: the
    # lag counts them, so an alert on it fires while a poison record holds up a partition.
    lag = sum(
        REGISTRY.get_sample_value(
            "cx_consumer_lag", {"group": "lag-group", "topic": RAW, "partition": str(p)}
        )
        or 0
        for p in range(12)
    )
    assert processor.decoded > 0
    assert lag >= processor.decoded


async def test_a_flood_of_invalid_records_stops_the_runner(kafka: EmbeddedKafka) -> None:
    await _produce(kafka.bootstrap, [b"garbage"] * 120)
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    runner = ConsumerRunner(
        _config(kafka.bootstrap, invalid_window=100, max_invalid_ratio=0.5), Doubler(), producer
    )
    with pytest.raises(DeadLetterRateExceeded):
        await asyncio.wait_for(runner.run(), 20)
    await producer.stop()
    committed = await _committed(kafka.bootstrap, "test-group")
    assert sum(committed.values()) < 120


class StoredPositions:
    def __init__(self, positions: dict[TopicPartition, int]) -> None:
        self.positions = positions
        self.loaded: list[TopicPartition] = []

    async def load(self, partitions: Collection[TopicPartition]) -> Positions:
        self.loaded.extend(partitions)
        return {tp: self.positions[tp] for tp in partitions if tp in self.positions}

    async def reset(self, positions: Positions) -> None:
        self.positions.update(positions)


async def test_offset_store_positions_win_over_kafka(kafka: EmbeddedKafka) -> None:
    # All on one partition (same key) so the stored position means "skip the first 6".
    producer0 = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer0.start()
    for i in range(10):
        await producer0.send_and_wait(RAW, orjson.dumps({"n": i}), partition=0)
    await producer0.stop()
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = Doubler()
    store = StoredPositions({TopicPartition(RAW, 0): 6})
    runner = ConsumerRunner(_config(kafka.bootstrap), processor, producer, offset_store=store)
    await _run_until(runner, lambda: len(processor.handled) >= 4)
    await producer.stop()
    assert sorted(processor.handled) == [6, 7, 8, 9]
    assert TopicPartition(RAW, 0) in store.loaded
    assert processor.positions[-1][TopicPartition(RAW, 0)] == 10


async def _produce_in_batches(bootstrap: str, batches: int, size: int) -> None:
    """`batches` x `size` records {"n": i} on partition 0 of RAW, each batch sent as one."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        n = 0
        for _ in range(batches):
            sent = []
            for _ in range(size):
                sent.append(await producer.send(RAW, orjson.dumps({"n": n}), partition=0))
                n += 1
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _resets(reason: str) -> float:
    labels = {"group": "test-group", "topic": RAW, "reason": reason}
    return REGISTRY.get_sample_value("cx_consumer_offset_resets_total", labels) or 0.0


async def test_a_stored_position_past_the_logs_end_reads_the_log_from_its_start(
    kafka: EmbeddedKafka,
) -> None:
    # A sink stored position 40, then the broker lost its log (the embedded broker keeps
    # topics in memory): the 15 records now there must not be skipped.
    await _produce_in_batches(kafka.bootstrap, batches=3, size=5)
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = Doubler()
    store = StoredPositions({TopicPartition(RAW, 0): 40})
    before = _resets("after_end")
    runner = ConsumerRunner(_config(kafka.bootstrap), processor, producer, offset_store=store)
    await _run_until(runner, lambda: len(processor.handled) >= 15)
    await producer.stop()
    assert sorted(processor.handled) == list(range(15))
    assert _resets("after_end") == before + 1
    assert store.positions[TopicPartition(RAW, 0)] == 0  # the sink was told to forget 40


async def test_a_stored_position_at_the_logs_true_end_is_kept(kafka: EmbeddedKafka) -> None:
    # The embedded broker reports the end of a partition as its last batch's first offset
    # plus one (11 here, for 15 records in batches of 5): position 15 is the true end, and
    # only records produced after it are new.
    await _produce_in_batches(kafka.bootstrap, batches=3, size=5)
    producer = make_producer(kafka.bootstrap, client_id="test")
    await producer.start()
    processor = Doubler()
    store = StoredPositions({TopicPartition(RAW, 0): 15})
    before = _resets("after_end")
    runner = ConsumerRunner(_config(kafka.bootstrap), processor, producer, offset_store=store)
    task = asyncio.create_task(_run_until(runner, lambda: len(processor.handled) >= 2))
    await asyncio.sleep(2)  # joined and seeked
    producer0 = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer0.start()
    for n in (100, 101):
        await producer0.send_and_wait(RAW, orjson.dumps({"n": n}), partition=0)
    await producer0.stop()
    await task
    await producer.stop()
    assert sorted(processor.handled) == [100, 101]
    assert _resets("after_end") == before
    assert store.positions[TopicPartition(RAW, 0)] == 15


class FlakyProducer(AIOKafkaProducer):  # type: ignore[misc]
    """Fails its first `failures` batches (a broker that times out) and, with `ok` given, every
    batch after its first `ok` ones (a broker gone for good)."""

    def __init__(self, failures: int = 0, *, ok: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.failures = failures
        self.ok = ok

    async def send_batch(self, *args: object, **kwargs: object) -> object:
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError()
        if self.ok is not None:
            if self.ok <= 0:
                raise KafkaTimeoutError()
            self.ok -= 1
        return await super().send_batch(*args, **kwargs)


async def test_unacknowledged_records_are_produced_again(
    kafka: EmbeddedKafka,
) -> None:
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(30)])
    producer = FlakyProducer(3, bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    processor = Doubler()
    runner = ConsumerRunner(_config(kafka.bootstrap, max_batch=7), processor, producer)

    async def all_committed() -> bool:
        return sum((await _committed(kafka.bootstrap, "test-group")).values()) >= 30

    task = asyncio.create_task(runner.run())
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not await all_committed():
            assert asyncio.get_running_loop().time() < deadline, "not everything was committed"
            assert not task.done(), "the runner stopped"
            await asyncio.sleep(0.2)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 15)
        await producer.stop()
    assert producer.failures == 0
    outputs = await _read_all(kafka.bootstrap, ENRICHED, 30)
    # Every input reached the output (some more than once: at-least-once).
    assert {orjson.loads(r.value or b"")["n"] for r in outputs} == {2 * i for i in range(30)}
    # A retry produces the unacknowledged records again; it does not decode or handle the
    # batch again (nor count it again in the processor's metrics).
    assert processor.decoded == 30
    assert sorted(processor.handled) == list(range(30))


async def test_nothing_is_committed_beyond_what_kafka_acknowledged(kafka: EmbeddedKafka) -> None:
    await _produce(kafka.bootstrap, [orjson.dumps({"n": i}) for i in range(40)])
    producer = FlakyProducer(ok=3, bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    runner = ConsumerRunner(
        _config(kafka.bootstrap, max_batch=4, max_retries=2), Doubler(), producer
    )
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(runner.run(), 30)
    await producer.stop()
    outputs = await _read_all(kafka.bootstrap, ENRICHED, 40, timeout_s=3)
    acknowledged = {orjson.loads(r.value or b"")["n"] for r in outputs}
    committed = await _committed(kafka.bootstrap, "test-group")
    assert 0 < len(acknowledged) < 40
    # Batches are handled while earlier ones wait for their acknowledgement, yet no position
    # beyond an unacknowledged record was committed.
    assert sum(committed.values()) <= len(acknowledged)

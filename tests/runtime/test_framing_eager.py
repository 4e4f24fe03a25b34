"""The framer's eager mode (group commit) against a scripted producer: open batches leave at
once while nothing awaits an acknowledgement, gather while something does, and leave together
when it is acknowledged (or failed), or after the linger at the latest."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from cxruntime.framing import Framer


class Builder:
    """Takes every record (the size bound is tested against the real broker)."""

    def __init__(self) -> None:
        self.records: list[bytes] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: None, headers: Any) -> object:
        self.records.append(value)
        return object()

    def close(self) -> None:
        """Nothing to finish: the records are kept as appended."""


class Producer:
    """Records each shipped batch; its delivery settles when the test says so."""

    def __init__(self) -> None:
        self.shipped: list[tuple[int, list[bytes], asyncio.Future[None]]] = []

    def create_batch(self) -> Builder:
        return Builder()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    async def send_batch(self, builder: Builder, topic: str, *, partition: int) -> Any:
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.shipped.append((partition, builder.records, delivery))
        return delivery


def key_for(partition: int) -> bytes:
    """A record key the producer's default partitioner puts on `partition` of two."""
    choose = DefaultPartitioner()
    return next(
        key
        for key in (f"crm-{i}".encode() for i in range(100))
        if choose(key, [0, 1], [0, 1]) == partition
    )


async def settle() -> None:
    """Let the framer's callbacks and shipping tasks run."""
    for _ in range(5):
        await asyncio.sleep(0)


def shipped(producer: Producer) -> list[tuple[int, list[bytes]]]:
    return [(partition, records) for partition, records, _ in producer.shipped]


async def test_eager_batches_leave_when_nothing_awaits_an_acknowledgement() -> None:
    producer = Producer()
    framer = Framer(producer, linger_s=None, eager=True)  # type: ignore[arg-type]
    assert framer.eager
    await framer.refresh_partitions(["t"])
    on_0, on_1 = key_for(0), key_for(1)

    first = framer.append("t", on_0, b"a", [])
    await settle()
    assert shipped(producer) == [(0, [b"a"])], "left at once"

    # While it awaits its acknowledgement, new records gather (no timer: linger_s is None).
    gathered = [framer.append("t", on_0, value, []) for value in (b"b", b"c")]
    other = framer.append("t", on_1, b"x", [])
    await settle()
    assert shipped(producer) == [(0, [b"a"])]
    assert gathered[0] is gathered[1]

    # The acknowledgement ships every open batch, together (one produce request).
    producer.shipped[0][2].set_result(None)
    await settle()
    assert first.done()
    assert sorted(shipped(producer)[1:]) == [(0, [b"b", b"c"]), (1, [b"x"])]

    # A failed delivery frees the pipe too, and fails its records.
    for _, _, delivery in producer.shipped[1:]:
        delivery.set_exception(ConnectionError("broker gone"))
    later = framer.append("t", on_0, b"d", [])
    await settle()
    assert isinstance(gathered[0].exception(), ConnectionError)
    assert isinstance(other.exception(), ConnectionError)
    assert shipped(producer)[3:] == [(0, [b"d"])]
    producer.shipped[3][2].set_result(None)
    await settle()
    assert later.done()
    assert later.exception() is None


async def test_eager_linger_bounds_the_wait_for_an_acknowledgement() -> None:
    producer = Producer()
    framer = Framer(producer, linger_s=0.02, eager=True)  # type: ignore[arg-type]
    await framer.refresh_partitions(["t"])
    framer.append("t", key_for(0), b"a", [])
    await settle()
    waiting = framer.append("t", key_for(0), b"b", [])
    await settle()
    assert shipped(producer) == [(0, [b"a"])]
    # Unacknowledged for longer than the linger: the gathered batch leaves anyway.
    await asyncio.sleep(0.05)
    assert shipped(producer) == [(0, [b"a"]), (0, [b"b"])]
    for _, _, delivery in producer.shipped:
        delivery.set_result(None)
    await settle()
    assert waiting.done()


async def test_without_eager_batches_wait_for_the_linger_or_a_flush() -> None:
    producer = Producer()
    framer = Framer(producer, linger_s=None)  # type: ignore[arg-type]
    assert not framer.eager
    await framer.refresh_partitions(["t"])
    framer.append("t", key_for(0), b"a", [])
    await settle()
    assert shipped(producer) == []
    framer.flush()
    await settle()
    assert shipped(producer) == [(0, [b"a"])]

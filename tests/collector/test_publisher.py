"""The publisher's bookkeeping without a broker: a scripted framer hands out batch futures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaError

from cxloop_collector.publisher import Outcome, Overloaded, Publisher, Record
from cxloop_collector.ratelimit import RateLimiter
from cxruntime.framing import Framer


class ScriptedFramer:
    """Every append joins the open batch; the test settles batches by hand."""

    def __init__(self) -> None:
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.appended = 0
        self.failure: Exception | None = None

    def partitions_stale(self, topics: Any) -> bool:
        return False

    def prepare(self, keys: Any) -> None:
        """Nothing to hash ahead: the scripted framer has no partitions."""

    def append(self, topic: str, key: Any, value: bytes, headers: Any) -> asyncio.Future[None]:
        if self.failure is not None:
            raise self.failure
        self.appended += 1
        return self.open

    def seal(self) -> asyncio.Future[None]:
        """The open batch leaves; later appends open the next one."""
        sealed = self.open
        self.open = asyncio.get_running_loop().create_future()
        return sealed


def record(uid: str) -> Record:
    return Record(uid=uid, event_id=uid, channel="web", key=b"k", value=b"{}", headers=[])


Single = Callable[[Publisher, Record], Awaitable[list[Outcome]]]


async def via_publish(publisher: Publisher, one: Record) -> list[Outcome]:
    return await publisher.publish([one])


async def via_publish_one(publisher: Publisher, one: Record) -> list[Outcome]:
    return [await publisher.publish_one(one)]


@pytest.fixture(params=[via_publish, via_publish_one], ids=["publish", "publish_one"])
def single(request: pytest.FixtureRequest) -> Single:
    """A single record published through `publish([r])` or its fast path `publish_one(r)`:
    both must behave alike."""
    publish: Single = request.param
    return publish


def publisher_with(
    framer: ScriptedFramer, *, timeout_s: float = 5.0, max_in_flight: int = 100
) -> Publisher:
    publisher = Publisher(timeout_s=timeout_s, max_in_flight=max_in_flight, memo_size=100)
    publisher.framer = cast(Framer, framer)
    return publisher


async def test_requests_of_one_batch_are_answered_when_it_is_acknowledged(single: Single) -> None:
    framer = ScriptedFramer()
    publisher = publisher_with(framer)
    first = asyncio.create_task(single(publisher, record("a")))
    second = asyncio.create_task(publisher.publish([record("b"), record("c")]))
    await asyncio.sleep(0)
    assert publisher.in_flight == 3
    framer.seal().set_result(None)
    assert await first == [Outcome.ACCEPTED]
    assert await second == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert publisher.in_flight == 0
    # Acknowledged uids are remembered: posted again, they are duplicates and not produced.
    assert await single(publisher, record("b")) == [Outcome.DUPLICATE]
    assert framer.appended == 3


async def test_a_failed_batch_answers_unavailable_and_forgets_its_uids(single: Single) -> None:
    framer = ScriptedFramer()
    publisher = publisher_with(framer)
    waiting = asyncio.create_task(single(publisher, record("a")))
    await asyncio.sleep(0)
    framer.seal().set_exception(OSError("broker gone"))
    assert await waiting == [Outcome.UNAVAILABLE]
    assert publisher.in_flight == 0
    # Not remembered: a retry is produced again.
    retry = asyncio.create_task(single(publisher, record("a")))
    await asyncio.sleep(0)
    framer.seal().set_result(None)
    assert await retry == [Outcome.ACCEPTED]


async def test_the_deadline_answers_every_waiter_of_a_stuck_batch_and_keeps_tracking_it(
    single: Single,
) -> None:
    framer = ScriptedFramer()
    publisher = publisher_with(framer, timeout_s=0.5)
    started = time.monotonic()
    first = asyncio.create_task(single(publisher, record("a")))
    await asyncio.sleep(0.2)
    later_started = time.monotonic()
    later = asyncio.create_task(single(publisher, record("b")))
    assert await first == [Outcome.UNAVAILABLE]
    assert await later == [Outcome.UNAVAILABLE]
    # One timer for the batch, armed by its first request: the later one is answered with it,
    # before (never after) its own deadline.
    assert time.monotonic() - started >= 0.5
    assert time.monotonic() - later_started < 0.5
    assert publisher.in_flight == 2
    # A retry of a record still in flight waits for that attempt instead of writing it again,
    # and is answered as a duplicate once it landed.
    retry = asyncio.create_task(single(publisher, record("a")))
    await asyncio.sleep(0.01)
    framer.seal().set_result(None)
    assert await retry == [Outcome.DUPLICATE]
    assert framer.appended == 2
    assert publisher.in_flight == 0


async def test_a_cancelled_request_does_not_cancel_the_others_waiting_on_its_batch(
    single: Single,
) -> None:
    framer = ScriptedFramer()
    publisher = publisher_with(framer)
    gone = asyncio.create_task(single(publisher, record("a")))
    staying = asyncio.create_task(single(publisher, record("b")))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert gone.cancelled()
    framer.seal().set_result(None)
    assert await staying == [Outcome.ACCEPTED]
    # The cancelled request's record was handed over and acknowledged all the same.
    assert await single(publisher, record("a")) == [Outcome.DUPLICATE]


async def test_over_the_in_flight_bound_nothing_is_produced(single: Single) -> None:
    framer = ScriptedFramer()
    publisher = publisher_with(framer, max_in_flight=1)
    first = asyncio.create_task(single(publisher, record("a")))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await single(publisher, record("b"))
    assert framer.appended == 1
    framer.seal().set_result(None)
    assert await first == [Outcome.ACCEPTED]


async def test_a_producer_that_refuses_the_record_answers_unavailable(single: Single) -> None:
    framer = ScriptedFramer()
    publisher = publisher_with(framer)
    framer.failure = KafkaError("producer closed")
    assert await single(publisher, record("a")) == [Outcome.UNAVAILABLE]
    assert publisher.in_flight == 0
    framer.failure = None
    retry = asyncio.create_task(single(publisher, record("a")))
    await asyncio.sleep(0)
    framer.seal().set_result(None)
    assert await retry == [Outcome.ACCEPTED]


def test_ratelimit_fields_follow_the_current_draft() -> None:
    limiter = RateLimiter(rate_per_s=2, burst=4)
    assert limiter.policy == '"api-key";q=4;w=2'
    first = limiter.check("k", now=0.0)
    assert first.allowed
    # 3 of 4 left: far from the limit, so an accepted answer leaves the fields out.
    assert not first.reported
    assert first.raw_headers() == [
        (b"ratelimit-policy", b'"api-key";q=4;w=2'),
        (b"ratelimit", b'"api-key";r=3;t=1'),
    ]
    second = limiter.check("k", now=0.0)
    assert not second.reported  # 2 left: exactly half the bucket
    third = limiter.check("k", now=0.0)
    assert third.reported
    assert third.headers() == {
        "RateLimit-Policy": '"api-key";q=4;w=2',
        "RateLimit": '"api-key";r=1;t=2',
    }
    limiter.check("k", now=0.0)
    refused = limiter.check("k", now=0.0)
    assert not refused.allowed
    assert refused.reported
    # On a 429, `t` is the Retry-After delay (the draft: both name the same moment).
    assert refused.headers() == {
        "RateLimit-Policy": '"api-key";q=4;w=2',
        "RateLimit": '"api-key";r=0;t=1',
        "Retry-After": "1",
    }
    # Half a second later one token is back.
    assert limiter.check("k", now=0.5).allowed


def test_ratelimit_fields_on_every_answer_when_asked() -> None:
    limiter = RateLimiter(rate_per_s=1000, burst=2000, report="always")
    decision = limiter.check("k", now=0.0)
    assert decision.reported
    assert decision.raw_headers()[1] == (b"ratelimit", b'"api-key";r=1999;t=1')
    assert limiter.policy == '"api-key";q=2000;w=2'

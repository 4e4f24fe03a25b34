"""The outbox relay against real receivers: retries keep the webhook-id, dead letters can be
re-sent, the breaker holds back a failing endpoint, e-mail goes over real SMTP (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop.cases import apply_feedback
from cxloop_closed_loop.clock import SystemClock
from cxloop_closed_loop.config import RoutingConfig, parse_config
from cxloop_closed_loop.orm import DeliveryAttemptRow, DeliveryRow
from cxloop_closed_loop.relay import Relay
from cxloop_closed_loop.settings import ClosedLoopSettings
from cxruntime.embedded import free_port
from tests.closed_loop.helpers import SECRET, WebhookReceiver, enriched

pytestmark = pytest.mark.integration

FAST = ClosedLoopSettings(
    closed_loop_retry_base_s=0.05,
    closed_loop_retry_max_s=0.2,
    closed_loop_max_attempts=4,
    closed_loop_breaker_threshold=100,
    closed_loop_delivery_timeout_s=2,
)


def config_for(receivers: list[dict[str, Any]]) -> RoutingConfig:
    return parse_config(
        {
            "receivers": receivers,
            "teams": [{"name": "triage"}],
            "triage": {"team": "triage"},
            "global_receivers": [r["name"] for r in receivers],
        }
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2) as http:
        yield http


async def open_cases(
    sessions: async_sessionmaker[AsyncSession], config: RoutingConfig, n: int
) -> None:
    async with sessions() as session, session.begin():
        for i in range(n):
            event = enriched(customer=f"crm-{i}", nps=2)
            await apply_feedback(session, event=event, config=config, now=datetime.now(UTC))


async def drain(relay: Relay, until: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not until():
        assert asyncio.get_running_loop().time() < deadline, "relay did not get there"
        await relay.deliver_due()
        await asyncio.sleep(0.05)


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[DeliveryRow]:
    async with sessions() as session:
        return list(await session.scalars(select(DeliveryRow)))


def webhook(receiver: WebhookReceiver) -> dict[str, Any]:
    return {"name": "hook", "type": "webhook", "url": receiver.url, "secret": SECRET}


async def test_retries_carry_the_same_webhook_id(
    db_sessions: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
    client: httpx.AsyncClient,
) -> None:
    receiver.fail_first = 2
    config = config_for([webhook(receiver)])
    await open_cases(db_sessions, config, 3)
    relay = Relay(
        sessions=db_sessions,
        config=lambda: config,
        settings=FAST,
        clock=SystemClock(),
        client=client,
    )
    await drain(relay, lambda: len(receiver.received) == 3)
    assert receiver.rejected == []
    ids = [r.webhook_id for r in receiver.received]
    assert len(set(ids)) == 3
    assert all(receiver.attempts[i] == 3 for i in ids)  # two 503s, then the same id again
    stored = await rows(db_sessions)
    assert {r.id for r in stored} == set(ids)
    assert all(r.status == "delivered" and r.attempts == 3 for r in stored)
    async with db_sessions() as session:
        outcomes = list(await session.scalars(select(DeliveryAttemptRow.outcome)))
    assert sorted(outcomes) == ["delivered"] * 3 + ["retry"] * 6


async def test_exhausted_retries_become_dead_letters_that_can_be_resent(
    db_sessions: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
    client: httpx.AsyncClient,
) -> None:
    receiver.fail_first = 10
    config = config_for([webhook(receiver)])
    await open_cases(db_sessions, config, 1)
    relay = Relay(
        sessions=db_sessions,
        config=lambda: config,
        settings=FAST,
        clock=SystemClock(),
        client=client,
    )
    await drain(relay, lambda: sum(receiver.attempts.values()) == FAST.closed_loop_max_attempts)
    await relay.deliver_due()
    [dead] = await rows(db_sessions)
    assert (dead.status, dead.attempts, dead.last_status) == ("dead", 4, 503)

    from cxloop_closed_loop.relay import resend

    receiver.fail_first = 0
    async with db_sessions() as session, session.begin():
        assert await resend(session, delivery_id=dead.id, now=datetime.now(UTC)) is not None
    await drain(relay, lambda: len(receiver.received) == 1)
    assert receiver.received[0].webhook_id == dead.id
    [delivered] = await rows(db_sessions)
    assert delivered.status == "delivered"


async def test_permanent_rejection_is_dead_at_once(
    db_sessions: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
    client: httpx.AsyncClient,
) -> None:
    receiver.status_override = 410
    config = config_for([webhook(receiver)])
    await open_cases(db_sessions, config, 1)
    relay = Relay(
        sessions=db_sessions,
        config=lambda: config,
        settings=FAST,
        clock=SystemClock(),
        client=client,
    )
    await relay.deliver_due()
    [row] = await rows(db_sessions)
    assert (row.status, row.attempts) == ("dead", 1)


async def test_breaker_holds_back_a_failing_endpoint(
    db_sessions: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
    client: httpx.AsyncClient,
) -> None:
    receiver.status_override = 503
    config = config_for([webhook(receiver)])
    await open_cases(db_sessions, config, 6)
    settings = FAST.model_copy(
        update={
            "closed_loop_breaker_threshold": 2,
            "closed_loop_relay_concurrency": 1,
            "closed_loop_breaker_cooldown_s": 60,
        }
    )
    relay = Relay(
        sessions=db_sessions,
        config=lambda: config,
        settings=settings,
        clock=SystemClock(),
        client=client,
    )
    await relay.deliver_due()
    assert sum(receiver.attempts.values()) == 2  # the breaker opened; four rows deferred
    stored = await rows(db_sessions)
    assert sorted(r.attempts for r in stored) == [0, 0, 0, 0, 1, 1]
    assert all(r.status == "pending" for r in stored)


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


async def test_email_over_smtp(
    db_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    mailbox = _Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = config_for(
            [
                {
                    "name": "desk",
                    "type": "email",
                    "to": ["desk@example.com"],
                    "from": "cxloop@example.com",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                }
            ]
        )
        await open_cases(db_sessions, config, 1)
        relay = Relay(
            sessions=db_sessions,
            config=lambda: config,
            settings=FAST,
            clock=SystemClock(),
            client=client,
        )
        await drain(relay, lambda: len(mailbox.messages) == 1)
    finally:
        controller.stop()
    message = message_from_bytes(mailbox.messages[0])
    assert message["To"] == "desk@example.com"
    assert "case opened" in message["Subject"]
    [row] = await rows(db_sessions)
    assert message["Message-ID"] == f"<{row.id}@cxloop>"
    assert message["Date"]  # RFC 5322 requires it
    assert row.status == "delivered"


async def test_quiet_hours_hold_a_notification_until_they_end(
    db_sessions: async_sessionmaker[AsyncSession],
    receiver: WebhookReceiver,
    client: httpx.AsyncClient,
) -> None:
    from datetime import timedelta

    from cxloop_closed_loop.clock import ManualClock

    quiet = {"start": "20:00", "end": "07:00", "timezone": "Europe/Berlin"}
    config = config_for([webhook(receiver) | {"quiet_hours": quiet}])
    clock = ManualClock(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))  # 23:00 in Berlin
    async with db_sessions() as session, session.begin():
        await apply_feedback(
            session, event=enriched(customer="night", nps=1), config=config, now=clock.now()
        )
    relay = Relay(
        sessions=db_sessions, config=lambda: config, settings=FAST, clock=clock, client=client
    )
    assert await relay.deliver_due() == 0
    clock.advance(timedelta(hours=7, minutes=59))  # 06:59 in Berlin
    assert await relay.deliver_due() == 0
    clock.advance(timedelta(minutes=1))
    assert await relay.deliver_due() == 1
    assert len(receiver.received) == 1
    assert receiver.received[0].body["data"]["customer"]["id"] == "night"

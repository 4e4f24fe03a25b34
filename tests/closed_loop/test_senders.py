"""Senders against httpx.MockTransport; signatures checked with the standardwebhooks package."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cxloop_closed_loop.config import Receiver, new_webhook_secret
from cxloop_closed_loop.notifications import detail_text
from cxloop_closed_loop.senders import (
    email_message,
    parse_retry_after,
    send,
    send_slack,
    send_webhook,
)
from tests.closed_loop.helpers import SECRET

NEW_SECRET = new_webhook_secret()
OTHER_SECRET = new_webhook_secret()

BODY = orjson.dumps(
    {
        "type": "case.opened",
        "timestamp": "2026-11-23T10:00:00+00:00",
        "data": {
            "id": "c1",
            "severity": "high",
            "team": "logistics",
            "status": "open",
            "touchpoint": "delivery",
            "customer": {"id": "crm-1"},
            "reasons": ["nps=1"],
            "feedback": {"comment": "zu spät"},
        },
    }
).decode()


async def test_webhook_is_signed_per_standard_webhooks() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    receiver = Receiver(
        name="crm", type="webhook", url="https://crm.test/h", secret=SecretStr(SECRET)
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await send_webhook(client, receiver, delivery_id="msg_1", body=BODY)
        again = await send_webhook(client, receiver, delivery_id="msg_1", body=BODY)
    assert result.delivered
    assert again.delivered
    for request in seen:
        assert request.headers["webhook-id"] == "msg_1"
        payload = Webhook(SECRET).verify(request.content, dict(request.headers))
        assert payload["type"] == "case.opened"


async def test_a_rotating_webhook_carries_one_signature_per_secret() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    receiver = Receiver(
        name="crm",
        type="webhook",
        url="https://crm.test/h",
        secret=SecretStr(NEW_SECRET),
        previous_secrets=[SecretStr(SECRET)],
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert (await send_webhook(client, receiver, delivery_id="msg_2", body=BODY)).delivered
    (request,) = seen
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    # A receiver still on the old secret and one already on the new one both accept it.
    for secret in (SECRET, NEW_SECRET):
        assert Webhook(secret).verify(request.content, dict(request.headers))["data"]["id"] == "c1"
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(request.content, dict(request.headers))


async def test_retryable_and_permanent_failures() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503),
            httpx.Response(400, text="bad"),
        ]
    )
    receiver = Receiver(
        name="crm", type="webhook", url="https://crm.test/h", secret=SecretStr(SECRET)
    )

    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: next(answers))) as client:
        throttled = await send_webhook(client, receiver, delivery_id="m", body=BODY)
        unavailable = await send_webhook(client, receiver, delivery_id="m", body=BODY)
        refused = await send_webhook(client, receiver, delivery_id="m", body=BODY)
    assert (throttled.retryable, throttled.retry_after_s) == (True, 7.0)
    assert unavailable.retryable
    assert not refused.retryable
    assert refused.status_code == 400


async def test_connection_errors_are_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    receiver = Receiver(
        name="crm", type="webhook", url="https://crm.test/h", secret=SecretStr(SECRET)
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await send_webhook(client, receiver, delivery_id="m", body=BODY)
    assert not result.delivered
    assert result.retryable


async def test_slack_gets_readable_text() -> None:
    posted: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(orjson.loads(request.content))
        return httpx.Response(200, text="ok")

    receiver = Receiver(name="s", type="slack", url="https://hooks.slack.test/x")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert (await send_slack(client, receiver, delivery_id="m", body=BODY)).delivered
    text = str(posted[0]["text"])
    assert "case opened" in text
    assert "crm-1" in text
    assert "zu spät" in str(posted[0]["blocks"])


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now)
        == 90.0
    )
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_email_carries_date_and_message_id() -> None:
    receiver = Receiver(name="m", type="email", to=["desk@example.com"], sender="cx@example.com")
    at = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    message = email_message(receiver, delivery_id="msg_1", body=BODY, now=at)
    assert parsedate_to_datetime(message["Date"]) == at
    assert message["Date"] == "Mon, 23 Nov 2026 10:00:05 +0000"
    assert message["Message-ID"] == "<msg_1@cxloop>"
    current = email_message(receiver, delivery_id="msg_1", body=BODY)
    assert abs(parsedate_to_datetime(current["Date"]) - datetime.now(UTC)) < timedelta(minutes=1)


def deadline_body(status: str) -> dict[str, object]:
    return {
        "type": "case.escalated",
        "data": {
            "id": "c1",
            "status": status,
            "team": "logistics",
            "acknowledge_due_at": "2026-11-23T10:00:00+00:00",
            "resolve_due_at": "2026-07-01T15:30:00+00:00",
        },
    }


def test_deadlines_are_shown_in_the_team_zone_with_the_offset() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    text = detail_text(deadline_body("open"), zone=berlin)
    assert "acknowledge by: Mon 2026-11-23 11:00 +01:00 (Europe/Berlin)" in text
    assert "resolve by" not in text
    for status in ("acknowledged", "contacted"):
        text = detail_text(deadline_body(status), zone=berlin)
        assert "resolve by: Wed 2026-07-01 17:30 +02:00 (Europe/Berlin)" in text  # summer time
        assert "acknowledge by" not in text
    assert "by:" not in detail_text(deadline_body("resolved"), zone=berlin)
    assert "acknowledge by: Mon 2026-11-23 10:00 +00:00 (UTC)" in detail_text(deadline_body("open"))


async def test_slack_shows_deadlines_in_the_team_zone() -> None:
    posted: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(orjson.loads(request.content))
        return httpx.Response(200, text="ok")

    receiver = Receiver(name="s", type="slack", url="https://hooks.slack.test/x")
    zones = {"logistics": ZoneInfo("America/New_York")}
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await send(
            client,
            receiver,
            delivery_id="m",
            body=orjson.dumps(deadline_body("open")).decode(),
            timeout_s=1,
            zone_of=zones.__getitem__,
        )
    assert result.delivered
    assert "acknowledge by: Mon 2026-11-23 05:00 -05:00 (America/New_York)" in str(
        posted[0]["blocks"]
    )

"""Delivering one notification: a signed Standard Webhook, a Slack message or an e-mail.

Each sender returns a `SendResult` saying whether it arrived, and if not, whether to retry
(429, 5xx, timeouts, refused connections, SMTP 4xx) and after how long the receiver asked.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Final
from zoneinfo import ZoneInfo

import aiosmtplib
import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from cxloop_closed_loop.config import Receiver
from cxloop_closed_loop.notifications import UTC_ZONE, detail_text, summary_line

USER_AGENT: Final = "cxloop-closed-loop/0.1"
_RETRYABLE_HTTP: Final = frozenset({408, 425, 429})

ZoneOf = Callable[[str], ZoneInfo]
"""A team's time zone by the team's name: deadlines in Slack and e-mail are shown in it."""


def _utc(team: str) -> ZoneInfo:
    return UTC_ZONE


def _team_zone(body: dict[str, Any], zone_of: ZoneOf) -> ZoneInfo:
    return zone_of(str((body.get("data") or {}).get("team", "")))


@dataclass(frozen=True)
class SendResult:
    """How one attempt went."""

    delivered: bool
    retryable: bool = False
    status_code: int | None = None
    retry_after_s: float | None = None
    error: str | None = None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _http_result(response: httpx.Response) -> SendResult:
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(True, status_code=code)
    retryable = code >= 500 or code in _RETRYABLE_HTTP
    return SendResult(
        False,
        retryable=retryable,
        status_code=code,
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        error=f"HTTP {code}: {response.text[:200]}",
    )


def signed_headers(delivery_id: str, body: str, secrets: str | Sequence[str]) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed now with the endpoint's secret; with
    several (a rotation), one signature each, space-separated, as the standard provides."""
    now = datetime.now(UTC)
    signature = " ".join(
        Webhook(secret).sign(msg_id=delivery_id, timestamp=now, data=body)
        for secret in ([secrets] if isinstance(secrets, str) else secrets)
    )
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


async def _post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> SendResult:
    try:
        response = await client.post(url, **kwargs)
    except httpx.TimeoutException as exc:
        return SendResult(False, retryable=True, error=f"timeout: {exc!r}")
    except httpx.HTTPError as exc:
        return SendResult(False, retryable=True, error=f"{type(exc).__name__}: {exc}")
    return _http_result(response)


async def send_webhook(
    client: httpx.AsyncClient, receiver: Receiver, *, delivery_id: str, body: str
) -> SendResult:
    """POST a Standard Webhook; webhook-id is the delivery id, the same on every retry."""
    assert receiver.url is not None
    assert receiver.secret is not None
    headers = signed_headers(delivery_id, body, receiver.signing_secrets)
    return await _post(client, receiver.url, content=body.encode(), headers=headers)


def slack_message(body: dict[str, Any], *, zone: ZoneInfo = UTC_ZONE) -> dict[str, Any]:
    """A Slack incoming-webhook payload for a case event, deadlines in `zone`."""
    text = detail_text(body, zone=zone)
    return {
        "text": summary_line(body),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
    }


async def send_slack(
    client: httpx.AsyncClient,
    receiver: Receiver,
    *,
    delivery_id: str,
    body: str,
    zone_of: ZoneOf = _utc,
) -> SendResult:
    """POST the event to a Slack incoming webhook."""
    assert receiver.url is not None
    parsed = orjson.loads(body)
    payload = orjson.dumps(slack_message(parsed, zone=_team_zone(parsed, zone_of)))
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    return await _post(client, receiver.url, content=payload, headers=headers)


def email_message(
    receiver: Receiver,
    *,
    delivery_id: str,
    body: str,
    zone_of: ZoneOf = _utc,
    now: datetime | None = None,
) -> EmailMessage:
    """The e-mail for a case event; Message-ID derives from the delivery, so retries match.

    `Date` (required by RFC 5322) is when this attempt is made, `now` or the current time.
    """
    parsed = orjson.loads(body)
    message = EmailMessage()
    message["From"] = receiver.sender
    message["To"] = ", ".join(receiver.to)
    message["Date"] = email.utils.format_datetime((now or datetime.now(UTC)).astimezone(UTC))
    message["Subject"] = summary_line(parsed)
    message["Message-ID"] = f"<{delivery_id}@cxloop>"
    message["X-Cxloop-Event"] = str(parsed.get("type", ""))
    message.set_content(detail_text(parsed, zone=_team_zone(parsed, zone_of)) + "\n")
    return message


async def send_email(
    receiver: Receiver,
    *,
    delivery_id: str,
    body: str,
    timeout_s: float,
    zone_of: ZoneOf = _utc,
) -> SendResult:
    """Send the event by SMTP."""
    message = email_message(receiver, delivery_id=delivery_id, body=body, zone_of=zone_of)
    password = receiver.smtp_password.get_secret_value() if receiver.smtp_password else None
    try:
        await aiosmtplib.send(
            message,
            hostname=receiver.smtp_host,
            port=receiver.smtp_port,
            username=receiver.smtp_username,
            password=password,
            start_tls=receiver.smtp_starttls,
            timeout=timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return SendResult(False, retryable=False, error=f"recipients refused: {exc}")
    except aiosmtplib.SMTPResponseException as exc:
        return SendResult(
            False, retryable=400 <= exc.code < 500, status_code=exc.code, error=str(exc)
        )
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        return SendResult(False, retryable=True, error=f"{type(exc).__name__}: {exc}")
    return SendResult(True, status_code=250)


async def send(
    client: httpx.AsyncClient,
    receiver: Receiver,
    *,
    delivery_id: str,
    body: str,
    timeout_s: float,
    zone_of: ZoneOf = _utc,
) -> SendResult:
    """Deliver to a receiver of any type; `zone_of` gives the team's zone for Slack and e-mail."""
    if receiver.type == "webhook":
        return await send_webhook(client, receiver, delivery_id=delivery_id, body=body)
    if receiver.type == "slack":
        return await send_slack(
            client, receiver, delivery_id=delivery_id, body=body, zone_of=zone_of
        )
    return await send_email(
        receiver, delivery_id=delivery_id, body=body, timeout_s=timeout_s, zone_of=zone_of
    )

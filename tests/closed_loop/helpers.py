"""Test helpers: enriched events, a real Standard Webhooks receiver, the service as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from cxruntime.embedded import free_port
from cxruntime.kafka import make_producer
from cxruntime.probes import ProcessExited, wait_for_http
from cxschema import ENRICHED, FeedbackEnriched, encode

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def enriched(
    *,
    customer: str | None = "crm-1",
    nps: int | None = 3,
    csat: int | None = None,
    ces: int | None = None,
    comment: str | None = None,
    touchpoint: str = "delivery",
    channel: str = "web",
    segment: str | None = None,
    region: str | None = "DE-BY",
    language: str = "de",
    sentiment: float = 0.0,
    event_id: str | None = None,
    source: str = "test",
    occurred_at: datetime | None = None,
) -> FeedbackEnriched:
    """An enriched event with sensible defaults; it occurred and was received at `occurred_at`
    (now when not given)."""
    now = occurred_at or datetime.now(UTC)
    scores = {k: v for k, v in {"nps": nps, "csat": csat, "ces": ces}.items() if v is not None}
    payload: dict[str, Any] = {
        "id": event_id or uuid.uuid4().hex,
        "occurred_at": now.isoformat(),
        "received_at": now.isoformat(),
        "source": source,
        "channel": channel,
        "scores": scores,
        "comment": comment,
        "touchpoint": touchpoint,
        "journey_stage": "fulfilment",
        "language": language,
        "sentiment": {
            "label": "negative" if sentiment < -0.2 else "neutral",
            "score": sentiment,
        },
    }
    if customer is not None:
        payload["customer"] = {"id": customer, "segment": segment, "region": region}
        payload["customer"] = {k: v for k, v in payload["customer"].items() if v is not None}
    return FeedbackEnriched.model_validate(payload)


async def produce(bootstrap: str, events: Iterable[FeedbackEnriched]) -> None:
    """Write enriched events to their topic, keyed by customer."""
    producer = make_producer(bootstrap, client_id="test")
    await producer.start()
    try:
        for event in events:
            key = (event.customer.id if event.customer else event.id).encode()
            await producer.send_and_wait(ENRICHED, encode(event), key=key)
    finally:
        await producer.stop()


@dataclass
class Received:
    """One webhook that arrived and verified."""

    webhook_id: str
    body: dict[str, Any]
    at: float


@dataclass
class WebhookReceiver:
    """An HTTP server on a free port verifying every request with `standardwebhooks`.

    `fail_first` answers that many attempts per webhook-id with 503 and `Retry-After: 0`.
    Requests that do not verify are counted in `rejected` and answered 401.
    """

    secret: str = SECRET
    fail_first: int = 0
    status_override: int | None = None
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    broken: int = 0
    raw: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self._lock = threading.RLock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                data = self.rfile.read(length)
                if len(data) < length:
                    # The sender died mid-request (a test SIGKILLs it): a broken connection,
                    # not a webhook, so neither received nor a rejected signature.
                    receiver.broken += 1
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status = receiver._handle(headers, data)
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Where to post."""
        return f"http://127.0.0.1:{self.port}/hooks"

    def _handle(self, headers: dict[str, str], data: bytes) -> int:
        with self._lock:
            self.raw.append((headers, data))
            webhook_id = headers.get("webhook-id", "")
            self.attempts[webhook_id] = self.attempts.get(webhook_id, 0) + 1
            if self.status_override is not None:
                return self.status_override
            if self.attempts[webhook_id] <= self.fail_first:
                return 503
            try:
                body = Webhook(self.secret).verify(data, headers)
            except Exception as exc:
                self.rejected.append(f"{webhook_id}: {exc}")
                return 401
            self.received.append(Received(webhook_id, body, time.monotonic()))
            return 204

    def of_type(self, event_type: str) -> list[Received]:
        """Verified webhooks of one type."""
        with self._lock:
            return [r for r in self.received if r.body["type"] == event_type]

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> None:
        """Poll until `predicate(self)` holds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return
            time.sleep(0.02)
        raise AssertionError(f"timed out; got {len(self.received)} webhooks")

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def cxloop_script() -> list[str]:
    """The `cxloop` command of this virtualenv."""
    script = Path(sys.executable).with_name("cxloop")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cxruntime"]


class ServiceProcess:
    """`cxloop closed-loop` as a child process on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "CX_CLOSED_LOOP_PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start and wait until /readyz answers 200."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*cxloop_script(), "closed-loop"], env=self.env, stdout=log, stderr=log
        )
        try:
            wait_for_http(
                f"{self.url}/readyz", process=self.process, timeout_s=timeout_s, interval_s=0.1
            )
        except (ProcessExited, TimeoutError) as exc:
            raise type(exc)(f"{exc}: {self.log_path.read_text()[-3000:]}") from None

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal."""
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)


def dump(value: Any) -> str:
    """JSON for files."""
    return json.dumps(value, indent=2)

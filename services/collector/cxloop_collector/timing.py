"""ASGI middleware timing the ingest endpoints and counting their answers by status class."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxloop_collector import telemetry

_CLASSES = ("5xx", "5xx", "2xx", "3xx", "4xx", "5xx")
"""Status class by `status // 100`: 1xx (never final) and anything beyond 5xx count as 5xx."""

_CHILDREN: dict[str, tuple[Histogram, tuple[Counter, ...]]] = {
    endpoint: (
        telemetry.REQUEST_SECONDS.labels(endpoint),
        tuple(telemetry.REQUESTS.labels(endpoint, s) for s in _CLASSES),
    )
    for endpoint in telemetry.ENDPOINTS
}


class RequestTiming:
    """Observes `cx_collector_request_seconds` and `cx_collector_requests_total`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        children = _CHILDREN.get(scope["path"]) if scope["type"] == "http" else None
        if children is None:
            await self.app(scope, receive, send)
            return
        histogram, counters = children
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            histogram.observe(time.perf_counter() - started)
            counters[status // 100 if 100 <= status < 600 else 0].inc()

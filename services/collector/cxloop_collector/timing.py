"""The ASGI middleware of the ingest endpoints: times them, counts their answers by status
class, and applies CORS on the browser-widget paths.

One layer for both: each ASGI middleware is another coroutine and `send` wrapper on every
request, which measured about 5 us per request on `POST /v1/feedback`."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxloop_collector import telemetry
from cxloop_collector.cors import (
    add_cors_headers,
    is_preflight,
    origin_allowed,
    preflight,
    widget_origin,
)
from cxruntime.loopmetrics import CounterChild, HistogramChild

_CLASSES = ("5xx", "5xx", "2xx", "3xx", "4xx", "5xx")
"""Status class by `status // 100`: 1xx (never final) and anything beyond 5xx count as 5xx."""

_CHILDREN: dict[str, tuple[HistogramChild, tuple[CounterChild, ...]]] = {
    endpoint: (
        telemetry.REQUEST_SECONDS.labels(endpoint),
        tuple(telemetry.REQUESTS.labels(endpoint, s) for s in _CLASSES),
    )
    for endpoint in telemetry.ENDPOINTS
}


class IngestMiddleware:
    """Observes `cx_collector_request_seconds` and `cx_collector_requests_total`; answers CORS
    preflights and adds CORS headers for allowed origins of publishable keys."""

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
        origin = widget_origin(scope)
        allowed = origin is not None and await origin_allowed(scope, origin)

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if allowed and origin is not None:
                    add_cors_headers(message, origin)
            await send(message)

        try:
            if origin is not None and is_preflight(scope):
                status = 204 if allowed else 403
                await preflight(send, origin, allowed=allowed)
            else:
                await self.app(scope, receive, send_observed)
        finally:
            histogram.observe(time.perf_counter() - started)
            counters[status // 100 if 100 <= status < 600 else 0].inc()

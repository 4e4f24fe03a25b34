"""CORS for browser widgets that post with a publishable key (applied by the collector's
`timing.IngestMiddleware`).

A preflight carries no key, so it is answered for the union of the live publishable keys'
origins (read from PostgreSQL, cached for a few seconds). The actual request is then checked
against its own key's origins by the gate (403 otherwise). While the database is unreachable the
last list read is kept for `auth.STALE_IF_ERROR_S`, like the keys themselves.
"""

from __future__ import annotations

import time
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Scope, Send

from cxruntime.auth import STALE_IF_ERROR_S
from cxruntime.ops import raw_header
from cxruntime.orm import ApiKeyRow
from cxruntime.problems import database_unreachable

CORS_PATHS: Final = ("/v1/feedback", "/v1/feedback/batch")
ALLOW_HEADERS: Final = "authorization, content-type, x-api-key"
EXPOSE_HEADERS: Final = "RateLimit, RateLimit-Policy, Retry-After"


class OriginAllowList:
    """The origins of every live publishable key, refreshed at most every `ttl_s` seconds."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl_s: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._origins: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._tried_at = float("-inf")

    async def allows(self, origin: str) -> bool:
        """True when some live publishable key lists `origin`."""
        now = time.monotonic()
        if now - self._tried_at >= self._ttl_s:
            self._tried_at = now
            try:
                async with self._sessions() as session:
                    rows = await session.scalars(
                        select(ApiKeyRow.origins).where(
                            ApiKeyRow.publishable.is_(True), ApiKeyRow.revoked_at.is_(None)
                        )
                    )
                    self._origins = frozenset(o for origins in rows for o in origins or ())
                self._loaded_at = now
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                if now - self._loaded_at >= STALE_IF_ERROR_S:
                    self._origins = frozenset()
        return origin in self._origins


def widget_origin(scope: Scope) -> str | None:
    """The `Origin` of a request to a widget path; None for every other request (no CORS)."""
    if scope["path"] not in CORS_PATHS:
        return None
    origin = raw_header(scope, b"origin")
    return None if origin is None else origin.decode("latin-1")


async def origin_allowed(scope: Scope, origin: str) -> bool:
    """True when some live publishable key allows `origin`."""
    allow_list: OriginAllowList | None = getattr(scope["app"].state, "origins", None)
    return allow_list is not None and await allow_list.allows(origin)


def is_preflight(scope: Scope) -> bool:
    """An `OPTIONS` request announcing the method it wants to send."""
    return (
        scope["method"] == "OPTIONS"
        and raw_header(scope, b"access-control-request-method") is not None
    )


def add_cors_headers(message: Message, origin: str) -> None:
    """The CORS headers of an answer to an allowed origin (on `http.response.start`)."""
    out = MutableHeaders(scope=message)
    out["Access-Control-Allow-Origin"] = origin
    out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    out.add_vary_header("Origin")


async def preflight(send: Send, origin: str, *, allowed: bool) -> None:
    headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
    if allowed:
        headers += [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", b"POST"),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
        ]
    await send(
        {"type": "http.response.start", "status": 204 if allowed else 403, "headers": headers}
    )
    await send({"type": "http.response.body", "body": b""})

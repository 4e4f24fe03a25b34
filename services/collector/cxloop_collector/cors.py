"""CORS for browser widgets that post with a publishable key.

A preflight carries no key, so it is answered for the union of the live publishable keys'
origins (read from PostgreSQL, cached for a few seconds). The actual request is then checked
against its own key's origins by the gate (403 otherwise).
"""

from __future__ import annotations

import time
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxruntime.orm import ApiKeyRow

CORS_PATHS: Final = ("/v1/feedback", "/v1/feedback/batch")
ALLOW_HEADERS: Final = "authorization, content-type, x-api-key"
EXPOSE_HEADERS: Final = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After"
)


class OriginAllowList:
    """The origins of every live publishable key, refreshed at most every `ttl_s` seconds."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl_s: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._origins: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    async def allows(self, origin: str) -> bool:
        """True when some live publishable key lists `origin`."""
        if time.monotonic() - self._loaded_at >= self._ttl_s:
            async with self._sessions() as session:
                rows = await session.scalars(
                    select(ApiKeyRow.origins).where(
                        ApiKeyRow.publishable.is_(True), ApiKeyRow.revoked_at.is_(None)
                    )
                )
                self._origins = frozenset(o for origins in rows for o in origins or ())
            self._loaded_at = time.monotonic()
        return origin in self._origins


class PublishableCors:
    """ASGI middleware answering preflights and adding CORS headers on the widget paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in CORS_PATHS:
            await self.app(scope, receive, send)
            return
        raw_origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
        if raw_origin is None:
            await self.app(scope, receive, send)
            return
        origin = raw_origin.decode("latin-1")
        headers = Headers(scope=scope)
        allow_list: OriginAllowList | None = getattr(scope["app"].state, "origins", None)
        allowed = allow_list is not None and await allow_list.allows(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(send, origin, allowed=allowed)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = origin
                out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(send: Send, origin: str, *, allowed: bool) -> None:
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

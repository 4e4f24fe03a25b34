"""Authentication of HTTP requests by API key, with a short-lived cache.

Keys are looked up by id and verified in constant time; results (including misses) are cached
for `ttl_s` so the ingest path does not query PostgreSQL per request. A revoked key stops
working within that time.

Stale-if-error: while the database cannot be reached, a key the database accepted within the
last `STALE_IF_ERROR_S` is still accepted, so an outage of PostgreSQL does not stop ingestion
(which only needs Kafka). Any other key is answered 503 with `Retry-After`, not 401: the
database might know it. The grace applies only to an unreachable database; a key the database
says is revoked is refused at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxruntime import apikeys
from cxruntime.apikeys import ApiKey
from cxruntime.problems import (
    Problem,
    UnreachableLog,
    database_unreachable,
    unavailable_problem,
)

_BEARER = "bearer "
STALE_IF_ERROR_S: Final = 600.0
"""How long after the database last accepted a key it stays accepted while the database is
unreachable."""


def presented_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer ...` or `X-API-Key`, if any (the first of each
    header counts; a bearer token wins over `X-API-Key`)."""
    authorization = api_key = None
    # One pass over the raw ASGI headers (names arrive lower-case) instead of two lookups.
    for name, value in request.scope["headers"]:
        if name == b"x-api-key":
            if api_key is None:
                api_key = value
        elif name == b"authorization" and authorization is None:
            authorization = value
    if authorization:
        header = authorization.decode("latin-1")
        if header[: len(_BEARER)].lower() == _BEARER:
            return header[len(_BEARER) :].strip() or None
    return api_key.decode("latin-1") if api_key else None


class Authenticator:
    """Resolves presented keys to `ApiKey`s, caching answers for `ttl_s` seconds."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        ttl_s: float = 5.0,
        stale_if_error_s: float = STALE_IF_ERROR_S,
        max_entries: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._stale_if_error_s = stale_if_error_s
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._outages = UnreachableLog()
        self._unreachable_until = float("-inf")

    def cached(self, key: str) -> tuple[bool, ApiKey | None]:
        """(True, the answer) when the cache holds a fresh answer for `key`, else (False, None)."""
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_s:
            return True, hit[1]
        return False, None

    async def resolve(self, key: str) -> ApiKey | None:
        """The live key for `key`, or None; while the database is unreachable, a key it accepted
        within `stale_if_error_s`, else a 503 problem."""
        fresh, cached = self.cached(key)
        if fresh:
            return cached
        now = time.monotonic()
        if now < self._unreachable_until:
            return self._stale(key, now)
        try:
            async with self._sessions() as session:
                found = await apikeys.authenticate(session, key)
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            self._outages.report(exc)
            # Connecting to a database that is down can take seconds: try again only after
            # `ttl_s`, answering from the cache meanwhile.
            self._unreachable_until = time.monotonic() + self._ttl_s
            return self._stale(key, now)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[key] = (now, found)
        return found

    def _stale(self, key: str, now: float) -> ApiKey | None:
        """The key the database accepted within `stale_if_error_s`, None for a malformed key
        (no database could know it), else a 503 problem."""
        if apikeys.parse_key_id(key) is None:
            return None
        hit = self._cache.get(key)
        if hit is not None and hit[1] is not None and now - hit[0] < self._stale_if_error_s:
            return hit[1]
        raise unavailable_problem(
            "The API key cannot be checked now: the database is unreachable; retry later."
        )

    async def require(self, request: Request, scope: str) -> ApiKey:
        """The request's key if it carries `scope`; 401 or 403 problems otherwise (503 when the
        database is unreachable and the key was not accepted recently)."""
        key = presented_key(request)
        if key is None:
            raise Problem(
                401,
                "Unauthorized",
                "Send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
                headers={"WWW-Authenticate": 'Bearer realm="cxloop"'},
            )
        fresh, found = self.cached(key)
        if not fresh:
            found = await self.resolve(key)
        if found is None:
            raise Problem(
                401,
                "Unauthorized",
                "The API key is unknown or revoked.",
                headers={"WWW-Authenticate": 'Bearer realm="cxloop", error="invalid_token"'},
            )
        if not found.allows(scope):
            raise Problem(403, "Forbidden", f"The key {found.name!r} lacks the scope {scope!r}.")
        return found


def authenticator(request: Request) -> Authenticator:
    """The app's `Authenticator`, set on `app.state.authenticator` in its lifespan."""
    auth = request.app.state.authenticator
    assert isinstance(auth, Authenticator)
    return auth


def require_scope(scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency that authenticates the request and demands `scope`."""

    async def dependency(request: Request) -> ApiKey:
        return await authenticator(request).require(request, scope)

    dependency.__name__ = f"require_{scope}"
    return dependency


IngestKey = Annotated[ApiKey, Depends(require_scope("ingest"))]
ReadKey = Annotated[ApiKey, Depends(require_scope("read"))]
CasesKey = Annotated[ApiKey, Depends(require_scope("cases"))]
AdminKey = Annotated[ApiKey, Depends(require_scope("admin"))]

"""API key resolution for the ingest hot path: the runtime's cached `Authenticator`, with
concurrent lookups of one key coalesced into one database query.

When a cached entry expires under load, every request in flight with that key would otherwise
query PostgreSQL at the same moment.
"""

from __future__ import annotations

import asyncio

from cxruntime.apikeys import ApiKey
from cxruntime.auth import Authenticator


class CoalescingAuthenticator(Authenticator):
    """`Authenticator` whose concurrent misses for one key share a single lookup."""

    _inflight: dict[str, asyncio.Future[ApiKey | None]]

    async def resolve(self, key: str) -> ApiKey | None:
        """The live key for `key`, or None."""
        fresh, found = self.cached(key)
        if fresh:
            return found
        inflight = self.__dict__.setdefault("_inflight", {})
        pending = inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ApiKey | None] = asyncio.get_running_loop().create_future()
        inflight[key] = future
        try:
            found = await super().resolve(key)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved; the waiters re-raise it
            raise
        finally:
            del inflight[key]
        future.set_result(found)
        return found

"""Per-key request rate limits: a token bucket per API key, in this process's memory."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request and the IETF RateLimit header values describing it."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int

    def headers(self, rate_per_s: float) -> dict[str, str]:
        """`RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers), plus Retry-After."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": f"{self.limit};w={max(1, round(self.limit / rate_per_s))}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class RateLimiter:
    """`rate_per_s` requests per second per key, bursts up to `burst`."""

    def __init__(self, *, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key_id: str, *, now: float | None = None) -> Decision:
        """Take one token from the key's bucket if there is one."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= self._max_keys and key_id not in self._buckets:
            self._buckets.clear()
        self._buckets[key_id] = (tokens, now)
        missing = 1.0 - tokens if not allowed else 0.0
        refill_s = (self.burst - tokens) / self.rate_per_s
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=int(tokens),
            reset_s=math.ceil(refill_s),
            retry_after_s=max(1, math.ceil(missing / self.rate_per_s)),
        )

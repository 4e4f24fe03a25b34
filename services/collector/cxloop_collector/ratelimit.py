"""Per-key request rate limits: a token bucket per API key, in this process's memory."""

from __future__ import annotations

import math
import time

RawHeaders = list[tuple[bytes, bytes]]


class Decision:
    """The answer for one request and the IETF RateLimit header values describing it.

    Only `allowed` is needed on every request; the header values are derived from the tokens
    left when a response is built (a plain slotted class: this is built per request)."""

    __slots__ = ("allowed", "limiter", "tokens")

    def __init__(self, allowed: bool, limiter: RateLimiter, tokens: float) -> None:
        self.allowed = allowed
        self.limiter = limiter
        self.tokens = tokens

    @property
    def limit(self) -> int:
        """The bucket's size: requests allowed at once."""
        return self.limiter.burst

    @property
    def remaining(self) -> int:
        """Whole requests left in the bucket."""
        return int(self.tokens)

    @property
    def reset_s(self) -> int:
        """Seconds until the bucket is full again."""
        return math.ceil((self.limiter.burst - self.tokens) / self.limiter.rate_per_s)

    @property
    def retry_after_s(self) -> int:
        """Seconds until the next request would be allowed (at least 1)."""
        return max(1, math.ceil(max(0.0, 1.0 - self.tokens) / self.limiter.rate_per_s))

    def headers(self) -> dict[str, str]:
        """`RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers), plus Retry-After."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": self.limiter.policy,
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers

    def raw_headers(self) -> RawHeaders:
        """The `RateLimit-*` headers of an allowed request as ASGI raw headers (lower-case
        names, bytes), ready to extend a response's `raw_headers`."""
        return [
            *self.limiter.constant_headers,
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset_s),
        ]


class RateLimiter:
    """`rate_per_s` requests per second per key, bursts up to `burst`."""

    def __init__(self, *, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self.policy = f"{burst};w={max(1, round(burst / rate_per_s))}"
        self.constant_headers: RawHeaders = [
            (b"ratelimit-limit", str(burst).encode()),
            (b"ratelimit-policy", self.policy.encode()),
        ]

    def check(self, key_id: str, *, now: float | None = None) -> Decision:
        """Take one token from the key's bucket if there is one."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key_id)
        if bucket is None:
            tokens = float(self.burst)
            if len(self._buckets) >= self._max_keys:
                self._buckets.clear()
        else:
            tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key_id] = (tokens, now)
        return Decision(allowed, self, tokens)

"""Per-key request rate limits: a token bucket per API key, in this process's memory.

Answers describe the limit with the two fields of draft-ietf-httpapi-ratelimit-headers-10:
`RateLimit-Policy: "api-key";q=<burst>;w=<seconds to refill>` and
`RateLimit: "api-key";r=<requests left>;t=<seconds>`. Every 429 carries them. Other answers
carry them once the key has used half its bucket, or always with `report="always"`: the draft
lets a server leave them out while the quota is far from exhausted, and on the collector's
single-event path the two header lines cost about 5 us of the request's CPU.
"""

from __future__ import annotations

import math
import time
from typing import Final, Literal

RawHeaders = list[tuple[bytes, bytes]]
Report = Literal["always", "near-limit"]

POLICY: Final = "api-key"
"""The policy's name in both fields."""
_FIELD: Final = b'"' + POLICY.encode() + b'";r=%d;t=%d'


class Decision:
    """The answer for one request and the RateLimit field values describing it.

    Only `allowed` is needed on every request; the field values are derived from the tokens
    left when a response is built (a plain slotted class: this is built per request)."""

    __slots__ = ("allowed", "limiter", "tokens")

    def __init__(self, allowed: bool, limiter: RateLimiter, tokens: float) -> None:
        self.allowed = allowed
        self.limiter = limiter
        self.tokens = tokens

    @property
    def reported(self) -> bool:
        """Whether the answer carries the RateLimit fields: always when refused, otherwise
        once fewer tokens than the limiter's reporting threshold are left."""
        return not self.allowed or self.tokens < self.limiter.report_below

    @property
    def remaining(self) -> int:
        """Whole requests left in the bucket."""
        return int(self.tokens)

    @property
    def retry_after_s(self) -> int:
        """Seconds until the next request would be allowed (at least 1)."""
        return max(1, math.ceil(max(0.0, 1.0 - self.tokens) / self.limiter.rate_per_s))

    @property
    def reset_s(self) -> int:
        """The `t` parameter: seconds until the bucket is full again; for a refused request
        the Retry-After delay, which the draft asks `t` to match when both are sent."""
        if not self.allowed:
            return self.retry_after_s
        return math.ceil((self.limiter.burst - self.tokens) / self.limiter.rate_per_s)

    def value(self) -> bytes:
        """The `RateLimit` field value."""
        return _FIELD % (self.remaining, self.reset_s)

    def headers(self) -> dict[str, str]:
        """Both RateLimit fields, plus Retry-After for a refused request (for a problem
        answer's headers)."""
        headers = {"RateLimit-Policy": self.limiter.policy, "RateLimit": self.value().decode()}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers

    def raw_headers(self) -> RawHeaders:
        """Both RateLimit fields as ASGI raw headers (lower-case names, bytes), ready to
        extend a response's `raw_headers`."""
        return [self.limiter.policy_header, (b"ratelimit", self.value())]


class RateLimiter:
    """`rate_per_s` requests per second per key, bursts up to `burst`; `report` says which
    allowed answers carry the RateLimit fields (see the module's doc)."""

    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        max_keys: int = 100_000,
        report: Report = "near-limit",
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self.policy = f'"{POLICY}";q={burst};w={max(1, math.ceil(burst / rate_per_s))}'
        self.policy_header = (b"ratelimit-policy", self.policy.encode())
        self.report_below = math.inf if report == "always" else burst / 2

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

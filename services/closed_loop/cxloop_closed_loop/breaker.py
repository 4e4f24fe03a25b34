"""A circuit breaker per endpoint, and the retry schedule. Pure: the caller passes the time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta


def backoff_delay(
    attempts: int,
    *,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> timedelta:
    """Wait before the next try: exponential with jitter, never less than Retry-After asked.

    `attempts` is how many tries have failed. The jitter ("equal jitter") keeps at least half
    of the exponential step, so retries of many endpoints spread out without collapsing to 0.
    """
    step = min(max_s, base_s * 2 ** max(0, attempts - 1))
    chosen = (rng or random).uniform(step / 2, step)
    if retry_after_s is not None:
        chosen = max(chosen, min(retry_after_s, max_s))
    return timedelta(seconds=chosen)


@dataclass
class _State:
    failures: int = 0
    open_until: datetime | None = None
    probing: bool = False


@dataclass
class CircuitBreakers:
    """After `threshold` consecutive failures an endpoint's breaker opens for `cooldown`;
    then one probe goes through (half-open): success closes it, failure opens it again."""

    threshold: int
    cooldown: timedelta
    _states: dict[str, _State] = field(default_factory=dict)

    def blocked_until(self, endpoint: str, now: datetime) -> datetime | None:
        """When the endpoint may be tried again, or None if it may be tried now."""
        state = self._states.get(endpoint)
        if state is None or state.open_until is None:
            return None
        if now < state.open_until:
            return state.open_until
        if state.probing:
            return now + self.cooldown / 10
        state.probing = True
        return None

    def success(self, endpoint: str) -> None:
        """An attempt arrived: close the breaker."""
        self._states.pop(endpoint, None)

    def failure(self, endpoint: str, now: datetime) -> None:
        """An attempt failed: count it, open the breaker at the threshold."""
        state = self._states.setdefault(endpoint, _State())
        state.failures += 1
        state.probing = False
        if state.failures >= self.threshold:
            state.open_until = now + self.cooldown

    def open_count(self, now: datetime) -> int:
        """How many breakers are open now."""
        return sum(
            1 for s in self._states.values() if s.open_until is not None and now < s.open_until
        )

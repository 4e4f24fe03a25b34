"""Backoff schedule and circuit breaker."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from cxloop_closed_loop.breaker import CircuitBreakers, backoff_delay


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempts, step in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (20, 60.0)]:
        for _ in range(20):
            delay = backoff_delay(attempts, base_s=1.0, max_s=60.0, rng=rng).total_seconds()
            assert step / 2 <= delay <= step


def test_backoff_honours_retry_after_up_to_the_cap() -> None:
    assert backoff_delay(1, base_s=1.0, max_s=60.0, retry_after_s=30).total_seconds() == 30
    assert backoff_delay(1, base_s=1.0, max_s=60.0, retry_after_s=600).total_seconds() == 60


def test_breaker_opens_after_threshold_then_half_opens() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    breakers = CircuitBreakers(threshold=3, cooldown=timedelta(seconds=30))
    for _ in range(2):
        breakers.failure("crm", now)
    assert breakers.blocked_until("crm", now) is None
    breakers.failure("crm", now)
    assert breakers.blocked_until("crm", now) == now + timedelta(seconds=30)
    assert breakers.blocked_until("other", now) is None
    assert breakers.open_count(now) == 1
    later = now + timedelta(seconds=31)
    assert breakers.blocked_until("crm", later) is None  # the one probe
    assert breakers.blocked_until("crm", later) is not None  # the rest wait for it
    breakers.success("crm")
    assert breakers.blocked_until("crm", later) is None


def test_failed_probe_reopens() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    breakers = CircuitBreakers(threshold=1, cooldown=timedelta(seconds=10))
    breakers.failure("crm", now)
    later = now + timedelta(seconds=11)
    assert breakers.blocked_until("crm", later) is None
    breakers.failure("crm", later)
    assert breakers.blocked_until("crm", later) == later + timedelta(seconds=10)

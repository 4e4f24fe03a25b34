"""Readiness probes: a round-trip to a dependency within a timeout, cached for a second so that
a scraping load balancer does not turn into load on Kafka or PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import httpx


class CachedProbe(ABC):
    """Base of the probes: subclasses implement `check()`, which raises when not ready."""

    failures: tuple[type[Exception], ...] = (OSError,)

    def __init__(self, *, timeout_s: float = 1.5, cache_s: float = 1.0) -> None:
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._checked_at = float("-inf")
        self._ok = False

    @abstractmethod
    async def check(self) -> None:
        """One round-trip to the dependency; raise one of `failures` when it is not there."""

    async def __call__(self) -> bool:
        if time.monotonic() - self._checked_at < self._cache_s:
            return self._ok
        failures: tuple[type[Exception], ...] = (*self.failures, TimeoutError)
        try:
            async with asyncio.timeout(self._timeout_s):
                await self.check()
            self._ok = True
        except failures:
            self._ok = False
        self._checked_at = time.monotonic()
        return self._ok


class ProcessExited(RuntimeError):
    """The process being waited for ended before it answered."""


def wait_for_http(
    url: str,
    *,
    accept: Callable[[int], bool] = lambda status: status == 200,
    process: subprocess.Popen[bytes] | None = None,
    timeout_s: float = 60.0,
    interval_s: float = 0.2,
) -> None:
    """Poll `GET url` until its status is accepted (default: 200).

    Raises `ProcessExited` once `process` has ended, `TimeoutError` after `timeout_s`. For
    tests, benchmarks and scripts that start a service and wait for it.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ProcessExited(f"{url}: the process exited with {process.returncode}")
        try:
            status: int | None = httpx.get(url, timeout=2).status_code
        except httpx.HTTPError:
            status = None  # not listening yet
        if status is not None and accept(status):
            return
        time.sleep(interval_s)
    raise TimeoutError(f"{url} did not answer as expected within {timeout_s:g} s")

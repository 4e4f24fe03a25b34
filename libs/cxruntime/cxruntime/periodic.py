"""Background loops that do one round of work every so often (SLA timers, gauges, pruning)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class PeriodicWorker(ABC):
    """Runs `tick()` every `interval_s` seconds until `stop()`; a failing tick is logged and
    tried again next round (a `cxruntime.serve.Worker`)."""

    def __init__(self, *, interval_s: float) -> None:
        self._interval_s = interval_s
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Return after the current round."""
        self._stopping.set()

    async def run(self) -> None:
        """Tick until stopped."""
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("%s failed; trying again next round", type(self).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    @abstractmethod
    async def tick(self) -> object:
        """One round of work."""

"""The SLA worker: fires due deadlines (escalation) and refreshes the state gauges."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop import repository
from cxloop_closed_loop.cases import fire_due_timers
from cxloop_closed_loop.clock import Clock
from cxloop_closed_loop.config import RoutingConfig
from cxloop_closed_loop.telemetry import CASES_OPEN, DEAD_LETTERS, OUTBOX_BACKLOG
from cxruntime.periodic import PeriodicWorker

log = logging.getLogger(__name__)


class SlaWorker(PeriodicWorker):
    """Every `interval_s`, fires due timers and updates the case and outbox gauges."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        config: Callable[[], RoutingConfig],
        clock: Clock,
        interval_s: float,
        on_fired: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock
        super().__init__(interval_s=interval_s)
        self._on_fired = on_fired

    async def tick(self) -> int:
        """Fire every due timer (in batches) and refresh the gauges; returns timers fired."""
        total = 0
        while True:
            async with self._sessions() as session, session.begin():
                fired = await fire_due_timers(
                    session, config=self._config(), now=self._clock.now(), limit=100
                )
            total += fired
            if fired < 100:
                break
        if total:
            self._on_fired()
        await self.refresh_gauges()
        return total

    async def refresh_gauges(self) -> None:
        """Set the active-case and outbox gauges from PostgreSQL."""
        async with self._sessions() as session:
            counts = await repository.active_counts(session)
            statuses = await repository.delivery_counts(session)
        CASES_OPEN.clear()
        for severity, team, n in counts:
            CASES_OPEN.labels(severity, team).set(n)
        OUTBOX_BACKLOG.set(statuses.get("pending", 0))
        DEAD_LETTERS.set(statuses.get("dead", 0))

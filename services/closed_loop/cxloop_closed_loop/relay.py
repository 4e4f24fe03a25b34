"""The outbox relay: leases due deliveries, sends them, records the outcome.

Rows are claimed with `FOR UPDATE SKIP LOCKED` and leased, so several replicas share the work
and a crash only delays rows until their lease expires. Each retry keeps the row id as
webhook-id; failures back off exponentially with jitter, honouring Retry-After; after
`max_attempts`, or on a permanent error, the row becomes a dead letter until re-sent. A pass
that fails as a whole (the database is down) is retried with its own backoff, and the outage
is logged once, not once a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop import repository
from cxloop_closed_loop.breaker import CircuitBreakers, backoff_delay
from cxloop_closed_loop.cases import team_of
from cxloop_closed_loop.clock import Clock
from cxloop_closed_loop.config import RoutingConfig
from cxloop_closed_loop.orm import DeliveryAttemptRow, DeliveryRow
from cxloop_closed_loop.senders import SendResult, send
from cxloop_closed_loop.settings import ClosedLoopSettings
from cxloop_closed_loop.telemetry import BREAKER_OPEN, DELIVERIES, DELIVERY_SECONDS
from cxruntime.outage import OutageLog, PassBackoff

log = logging.getLogger(__name__)

OUTAGE_REMINDER_S: Final = 60.0
"""While relay passes keep failing, a one-line reminder at most this often."""


class ResendConflict(Exception):
    """The notification is still in the outbox; nothing to re-send."""


class Relay:
    """Background worker delivering the outbox; `wake()` after writing rows for low latency."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        config: Callable[[], RoutingConfig],
        settings: ClosedLoopSettings,
        clock: Clock,
        client: httpx.AsyncClient,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._settings = settings
        self._clock = clock
        self._client = client
        self._wakes = [asyncio.Event() for _ in range(max(1, settings.closed_loop_relay_workers))]
        self._stopping = asyncio.Event()
        self.breakers = CircuitBreakers(
            threshold=settings.closed_loop_breaker_threshold,
            cooldown=timedelta(seconds=settings.closed_loop_breaker_cooldown_s),
        )
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._lease = timedelta(seconds=settings.closed_loop_delivery_timeout_s * 2 + 10)
        self._outage = OutageLog(remind_every_s=OUTAGE_REMINDER_S)  # shared by the loops

    def wake(self) -> None:
        """New rows are waiting: look now rather than at the next poll."""
        for event in self._wakes:
            event.set()

    def stop(self) -> None:
        """Finish the deliveries in flight and return."""
        self._stopping.set()
        self.wake()

    async def run(self) -> None:
        """Deliver until stopped, with `closed_loop_relay_workers` claim loops in parallel.

        Several loops keep the pipe full: while one waits for its slowest receiver, another
        has already claimed the next rows (SKIP LOCKED keeps them apart).
        """
        await asyncio.gather(*(self._loop(event) for event in self._wakes))

    async def _loop(self, wake: asyncio.Event) -> None:
        interval = self._settings.closed_loop_relay_interval_s
        backoff = PassBackoff(
            base_s=interval, max_s=max(interval, self._settings.closed_loop_relay_backoff_max_s)
        )
        while not self._stopping.is_set():
            wake.clear()
            try:
                sent = await self.deliver_due()
            except Exception as exc:
                self._pass_failed(exc)
                # Only stop() cuts the wait short: a wake() is no sign the database is back.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff.failure())
                continue
            backoff.success()
            self._pass_worked()
            if sent >= self._settings.closed_loop_relay_batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)

    def _pass_failed(self, exc: Exception) -> None:
        """Log an outage's first failure with its traceback, then a line now and then."""
        report = self._outage.failure(time.monotonic())
        if report == "first":
            log.error(
                "relay pass failed; retrying with backoff up to %.0f s, quietly until it works "
                "(a reminder every %.0f s)",
                self._settings.closed_loop_relay_backoff_max_s,
                OUTAGE_REMINDER_S,
                exc_info=exc,
            )
        elif report == "reminder":
            log.warning(
                "relay passes still failing (%d failed passes so far): %s: %s",
                self._outage.failures,
                type(exc).__name__,
                str(exc)[:200],
            )

    def _pass_worked(self) -> None:
        ended = self._outage.success(time.monotonic())
        if ended is not None:
            seconds, failures = ended
            log.info("relay passes work again after %.1f s and %d failed passes", seconds, failures)

    async def deliver_due(self) -> int:
        """One pass: claim due rows, send them concurrently, record results; returns rows."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            rows = await repository.claim_deliveries(
                session, now=now, limit=self._settings.closed_loop_relay_batch, lease=self._lease
            )
        if not rows:
            return 0
        limit = asyncio.Semaphore(self._settings.closed_loop_relay_concurrency)

        async def one(row: DeliveryRow) -> _Outcome:
            async with limit:
                return await self._attempt(row)

        outcomes = await asyncio.gather(*(one(row) for row in rows))
        await self._record(outcomes)
        BREAKER_OPEN.set(self.breakers.open_count(self._clock.now()))
        return len(rows)

    async def _attempt(self, row: DeliveryRow) -> _Outcome:
        config = self._config()
        now = self._clock.now()
        try:
            receiver = config.receiver(row.receiver)
        except KeyError:
            return _Outcome(row, SendResult(False, error="receiver no longer configured"), 0, now)
        blocked = self.breakers.blocked_until(row.receiver, now)
        if blocked is not None:
            return _Outcome(row, None, 0, now, deferred_until=blocked)
        async with self._endpoint_slots(row.receiver):
            started = time.perf_counter()
            try:
                result = await asyncio.wait_for(
                    send(
                        self._client,
                        receiver,
                        delivery_id=row.id,
                        body=row.body,
                        timeout_s=self._settings.closed_loop_delivery_timeout_s,
                        zone_of=lambda team: team_of(config, team).zone,
                    ),
                    timeout=self._settings.closed_loop_delivery_timeout_s + 5,
                )
            except TimeoutError:
                result = SendResult(False, retryable=True, error="delivery timed out")
            elapsed = time.perf_counter() - started
        DELIVERY_SECONDS.labels(row.receiver_type).observe(elapsed)
        now = self._clock.now()
        if result.delivered:
            self.breakers.success(row.receiver)
        else:
            self.breakers.failure(row.receiver, now)
        return _Outcome(row, result, int(elapsed * 1000), now)

    def _endpoint_slots(self, endpoint: str) -> asyncio.Semaphore:
        """At most `closed_loop_endpoint_concurrency` requests in flight to one receiver."""
        slots = self._slots.get(endpoint)
        if slots is None:
            slots = asyncio.Semaphore(self._settings.closed_loop_endpoint_concurrency)
            self._slots[endpoint] = slots
        return slots

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """Write every attempt's outcome in one transaction."""
        settings = self._settings
        async with self._sessions() as session, session.begin():
            current = await repository.lock_deliveries(session, [o.row.id for o in outcomes])
            for item in outcomes:
                row = current.get(item.row.id)
                if row is None or row.status != "pending":
                    continue
                row.leased_until = None
                if item.result is None:
                    row.next_attempt_at = item.deferred_until or item.at
                    DELIVERIES.labels(row.receiver_type, "deferred").inc()
                    continue
                result = item.result
                row.attempts += 1
                row.last_status = result.status_code
                row.last_error = result.error
                if result.delivered:
                    outcome = "delivered"
                    row.status = "delivered"
                    row.delivered_at = item.at
                elif result.retryable and row.attempts < settings.closed_loop_max_attempts:
                    outcome = "retry"
                    row.next_attempt_at = item.at + backoff_delay(
                        row.attempts,
                        base_s=settings.closed_loop_retry_base_s,
                        max_s=settings.closed_loop_retry_max_s,
                        retry_after_s=result.retry_after_s,
                    )
                else:
                    outcome = "dead"
                    row.status = "dead"
                    row.dead_at = item.at
                    log.warning(
                        "delivery %s to %s dead after %d attempts: %s",
                        row.id,
                        row.receiver,
                        row.attempts,
                        result.error,
                    )
                session.add(
                    DeliveryAttemptRow(
                        delivery_id=row.id,
                        at=item.at,
                        outcome=outcome,
                        status_code=result.status_code,
                        error=result.error,
                        duration_ms=item.duration_ms,
                    )
                )
                DELIVERIES.labels(row.receiver_type, outcome).inc()


@dataclass(frozen=True)
class _Outcome:
    """One attempt's result (None: held back by the breaker until `deferred_until`)."""

    row: DeliveryRow
    result: SendResult | None
    duration_ms: int
    at: datetime
    deferred_until: datetime | None = None


async def resend(session: AsyncSession, *, delivery_id: str, now: datetime) -> DeliveryRow | None:
    """Put a dead (or delivered) notification back in the outbox, same webhook-id; None if absent.

    Raises `ResendConflict` for a notification still pending (it is being delivered already).
    """
    row = await repository.get_delivery(session, delivery_id, lock=True)
    if row is None:
        return None
    if row.status == "pending":
        raise ResendConflict(f"delivery {delivery_id} is still pending")
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now
    row.leased_until = None
    row.dead_at = None
    return row

"""The Kafka side: enriched feedback in, cases and outbox rows out (one transaction a batch)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop.cases import apply_batch
from cxloop_closed_loop.clock import Clock
from cxloop_closed_loop.config import RoutingConfig
from cxloop_closed_loop.telemetry import FEEDBACK, FEEDBACK_SKIPPED
from cxruntime.consumer import Consumed, Decoded, InvalidMessage, Positions, Produce
from cxschema import FeedbackEnriched, decode_enriched

log = logging.getLogger(__name__)


class CaseProcessor:
    """Decodes `cx.feedback.enriched.v1` and applies each event to the cases.

    Idempotent: an event whose uid is already attached to a case does nothing, so a batch
    redelivered after a crash before the commit opens no second case and sends nothing twice.
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        config: Callable[[], RoutingConfig],
        clock: Clock,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock
        self._on_committed = on_committed

    def decode(self, record: Consumed) -> FeedbackEnriched:
        """Parse an enriched event or reject it as invalid."""
        if record.value is None:
            raise InvalidMessage("empty record value")
        try:
            return decode_enriched(record.value)
        except ValidationError as exc:
            raise InvalidMessage(f"not a valid enriched event: {exc}") from exc

    async def handle(
        self, batch: Sequence[Decoded[FeedbackEnriched]], positions: Positions
    ) -> Sequence[Produce]:
        """Apply the batch in one transaction, then wake the relay."""
        if not batch:
            return []
        async with self._sessions() as session, session.begin():
            results = await apply_batch(
                session,
                events=[item.value for item in batch],
                config=self._config(),
                now=self._clock.now(),
            )
        deliveries = sum(r.deliveries for r in results)
        skipped: Counter[str] = Counter()
        for result in results:
            FEEDBACK.labels(result.outcome).inc()
            if result.reason is not None:
                FEEDBACK_SKIPPED.labels(result.reason).inc()
                skipped[result.reason] += 1
        if skipped:
            # One line a batch, not one per event: an imported history skips thousands.
            log.info(
                "left %s of %d events alone (%s)",
                sum(skipped.values()),
                len(results),
                ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items())),
            )
        if deliveries:
            self._on_committed()
        return []

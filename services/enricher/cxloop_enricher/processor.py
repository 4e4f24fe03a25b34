"""The enricher on the consumer runner: `cx.feedback.raw.v1` -> `cx.feedback.enriched.v1`.

`decode` parses and enriches each record (both pure and per record), so a record that cannot be
parsed, or, through a bug or a bad configuration, cannot be enriched, is dead-lettered with its
reason under the runner's dead-letter cap instead of blocking its partition. `handle` turns the
batch into output records: same key, the CloudEvents headers with `ce_type` set to the enriched
type (`ce_id` and `ce_source` unchanged) and any other header carried over. The runner commits
only once they are acknowledged.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from cxloop_enricher import metrics
from cxloop_enricher.enrich import Enriched, Enricher
from cxruntime.consumer import Consumed, Decoded, InvalidMessage, Positions, Produce
from cxschema import ENRICHED, TYPE_ENRICHED, ce_headers, decode_received, encode, record_key

_REPLACED_HEADERS = frozenset(
    {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type"}
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def describe(exc: ValidationError) -> tuple[str, str]:
    """A dead-letter reason class (json or schema) and a readable reason."""
    errors = exc.errors(include_url=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return "json", f"invalid JSON: {errors[0]['msg']}"
    parts = []
    for error in errors[:10]:
        where = ".".join(str(step) for step in error["loc"]) or "(event)"
        parts.append(f"{where}: {error['msg']}")
    return "schema", "not a valid FeedbackReceived: " + "; ".join(parts)


class EnrichProcessor:
    """`Processor[Enriched]` for `cxruntime.consumer.ConsumerRunner`."""

    def __init__(self, enricher: Enricher, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._enricher = enricher
        self._clock = clock

    async def prepare(self, records: Sequence[Consumed]) -> None:
        """With a sentiment model that scores many comments cheaper together (sentence
        embeddings), have it encode the batch's comments in one go, in a worker thread so that
        the HTTP API keeps answering; `decode` then finds them encoded. Records that do not
        parse are left to `decode`, which dead-letters them."""
        if self._enricher.analyzer.batches:
            await asyncio.to_thread(self._prepare, records)

    def _prepare(self, records: Sequence[Consumed]) -> None:
        events = []
        for record in records:
            if not record.value:
                continue
            try:
                events.append(decode_received(record.value))
            except ValidationError:
                continue
        self._enricher.prepare(events)

    def decode(self, record: Consumed) -> Enriched:
        """Parse and enrich one raw record, or raise `InvalidMessage` saying why not."""
        if not record.value:
            metrics.DEAD_LETTERS.labels("empty").inc()
            raise InvalidMessage("empty record value")
        try:
            event = decode_received(record.value)
        except ValidationError as exc:
            kind, reason = describe(exc)
            metrics.DEAD_LETTERS.labels(kind).inc()
            raise InvalidMessage(reason) from exc
        try:
            return self._enricher.enrich(event, now=self._clock())
        except (ValidationError, ValueError) as exc:
            metrics.DEAD_LETTERS.labels("enrichment").inc()
            raise InvalidMessage(f"enrichment failed: {exc}") from exc

    async def handle(
        self, batch: Sequence[Decoded[Enriched]], positions: Positions
    ) -> Sequence[Produce]:
        """The enriched records to produce (the runner awaits their acks, then commits)."""
        out = [_output(item.record, item.value) for item in batch]
        _count(item.value for item in batch)
        return out


def _output(record: Consumed, enriched: Enriched) -> Produce:
    event = enriched.event
    headers = ce_headers(event, ce_type=TYPE_ENRICHED)
    headers.extend((k, v) for k, v in record.headers if k not in _REPLACED_HEADERS)
    key = record.key if record.key is not None else record_key(event)
    return Produce(topic=ENRICHED, value=encode(event), key=key, headers=headers)


def _count(batch: Iterable[Enriched]) -> None:
    events: collections.Counter[tuple[str, str, str]] = collections.Counter()
    touchpoints: collections.Counter[tuple[str, str]] = collections.Counter()
    redactions: collections.Counter[str] = collections.Counter()
    for enriched in batch:
        event = enriched.event
        root = event.touchpoint.partition(".")[0]
        events[root, metrics.language_label(event.language), event.sentiment.label] += 1
        touchpoints[event.touchpoint, enriched.tagging.via] += 1
        redactions.update(event.redactions)
    for labels, n in events.items():
        metrics.EVENTS.labels(*labels).inc(n)
    for labels2, n in touchpoints.items():
        metrics.TOUCHPOINTS.labels(*labels2).inc(n)
    for kind, n in redactions.items():
        metrics.REDACTIONS.labels(kind).inc(n)

"""What every ingest request passes: rate limit, origin of browser keys, channel, then Kafka.

`Gate` turns the publisher's outcomes into HTTP answers: 202/200 with the id, 503 with
Retry-After when Kafka did not acknowledge in time, 429 when over the in-flight bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from cxloop_collector import telemetry
from cxloop_collector.publisher import Outcome, Overloaded, Publisher, Record
from cxloop_collector.ratelimit import Decision, RateLimiter
from cxruntime.apikeys import ApiKey
from cxruntime.auth import Authenticator
from cxruntime.problems import Problem

JSON = "application/json"


@dataclass
class Batch:
    """Items of a multi-event request: records to produce, items rejected before that, and
    `notes` about the request as a whole, answered beside the per-item results."""

    size: int
    records: dict[int, Record] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[int, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def reject(
        self,
        index: int,
        errors: list[dict[str, str]],
        channel: str = "unknown",
        *,
        row: int | None = None,
    ) -> None:
        """Record item `index` (CSV line `row`) as rejected with its field errors."""
        item: dict[str, Any] = {"index": index, "errors": errors}
        if row is not None:
            item["row"] = row
        self.rejected.append(item)
        telemetry.count_event(channel, "rejected")


class Gate:
    """Admission and publishing shared by every ingest endpoint."""

    def __init__(
        self, *, publisher: Publisher, limiter: RateLimiter, authenticator: Authenticator
    ) -> None:
        self.publisher = publisher
        self.limiter = limiter
        self.authenticator = authenticator

    async def enter(self, request: Request) -> tuple[ApiKey, Decision]:
        """Authenticate an ingest request (scope `ingest`) and admit it; 401, 403 or 429
        problems otherwise."""
        key = await self.authenticator.require(request, "ingest")
        return key, self.admit(request, key)

    @staticmethod
    def now() -> datetime:
        """The receive time stamped on events."""
        return datetime.now(UTC)

    def admit(self, request: Request, key: ApiKey) -> Decision:
        """Take a rate-limit token and check a browser key's origin; 429 or 403 otherwise."""
        decision = self.limiter.check(key.key_id)
        if not decision.allowed:
            telemetry.RATE_LIMITED.inc()
            raise Problem(
                429,
                "Too many requests",
                f"The key {key.name!r} is over its rate of {self.limiter.rate_per_s:g} "
                "requests per second.",
                headers=decision.headers(),
            )
        if key.publishable:
            origin = request.headers.get("origin")
            if origin is None or origin not in key.origins:
                raise Problem(
                    403,
                    "Forbidden",
                    f"The publishable key {key.name!r} may only be used from its allowed origins.",
                )
        return decision

    @staticmethod
    def check_channel(key: ApiKey, channel: str) -> None:
        """403 when the key may not post to `channel`."""
        if not key.allows_channel(channel):
            telemetry.count_event(channel, "rejected")
            raise Problem(
                403, "Forbidden", f"The key {key.name!r} may not post to channel {channel!r}."
            )

    async def _publish(self, records: Sequence[Record]) -> list[Outcome]:
        try:
            if len(records) == 1:
                return [await self.publisher.publish_one(records[0])]
            return await self.publisher.publish(records)
        except Overloaded:
            for record in records:
                telemetry.count_event(record.channel, "overloaded")
            raise Problem(
                429,
                "Too many requests",
                "Too many events are waiting for Kafka's acknowledgement; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None

    async def publish_one(self, record: Record, decision: Decision) -> Response:
        """Produce one record: 202 accepted, 200 duplicate, or 503."""
        (outcome,) = await self._publish((record,))
        telemetry.count_event(record.channel, outcome.value)
        if outcome is Outcome.UNAVAILABLE:
            raise unavailable(extra={"id": record.event_id})
        body = orjson.dumps({"id": record.event_id, "status": outcome.value})
        return answer(body, 202 if outcome is Outcome.ACCEPTED else 200, decision)

    async def publish_batch(self, batch: Batch, decision: Decision) -> Response:
        """Produce a batch's valid records; per-item results, 503 if Kafka failed any."""
        records = list(batch.records.values())
        outcomes = await self._publish(records)
        # Counted per (channel, outcome) in C: this runs for up to 500 records a request.
        counts = Counter(zip([record.channel for record in records], outcomes, strict=True))
        accepted = duplicates = 0
        for (channel, outcome), amount in counts.items():
            telemetry.count_event(channel, outcome.value, amount)
            if outcome is Outcome.ACCEPTED:
                accepted += amount
            elif outcome is Outcome.DUPLICATE:
                duplicates += amount
        unavailable_items = [
            index
            for index, outcome in zip(batch.records, outcomes, strict=True)
            if outcome is Outcome.UNAVAILABLE
        ]
        ids: list[str | None] = [None] * batch.size
        for index, record in batch.records.items():
            ids[index] = record.event_id
        result: dict[str, Any] = {
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": sorted(batch.rejected, key=lambda item: int(item["index"])),
            "ids": ids,
            **batch.notes,
        }
        if unavailable_items:
            result["unavailable"] = unavailable_items
            raise unavailable(
                detail=f"Kafka did not acknowledge {len(unavailable_items)} of the items in "
                "time; retry them (items already accepted are answered as duplicates).",
                extra=result,
            )
        return answer(orjson.dumps(result), 200, decision)


def answer(body: bytes, status: int, decision: Decision) -> Response:
    """A JSON response, with the RateLimit fields when the decision reports them."""
    response = Response(body, status_code=status, media_type=JSON)
    if decision.reported:
        response.raw_headers.extend(decision.raw_headers())
    return response


def unavailable(*, detail: str | None = None, extra: dict[str, Any] | None = None) -> Problem:
    """The 503 answer when Kafka did not acknowledge in time."""
    return Problem(
        503,
        "Service unavailable",
        detail
        or "Kafka did not acknowledge the event in time; it was not accepted. Retry with the "
        "same id.",
        headers={"Retry-After": "2"},
        extra=extra,
    )

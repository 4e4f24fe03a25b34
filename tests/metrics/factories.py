"""Enriched events for the metrics tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cxschema import FeedbackEnriched, Sentiment, encode


def enriched(
    event_id: str,
    *,
    occurred_at: datetime,
    source: str = "test",
    channel: str = "web",
    touchpoint: str = "delivery",
    journey_stage: str = "delivery",
    region: str | None = "DE-BY",
    segment: str | None = "premium",
    nps: int | None = None,
    csat: int | None = None,
    ces: int | None = None,
    comment: str | None = None,
    sentiment: tuple[str, float] = ("neutral", 0.0),
) -> FeedbackEnriched:
    """One enriched event; a customer is attached when region or segment is given."""
    customer: dict[str, Any] | None = None
    if region is not None or segment is not None:
        customer = {"id": f"c-{event_id}", "region": region, "segment": segment}
    scores = {k: v for k, v in {"nps": nps, "csat": csat, "ces": ces}.items() if v is not None}
    if not scores and comment is None:
        comment = "no score"
    return FeedbackEnriched.model_validate(
        {
            "id": event_id,
            "occurred_at": occurred_at,
            "channel": channel,
            "customer": customer,
            "scores": scores,
            "comment": comment,
            "language": "de",
            "touchpoint": touchpoint,
            "journey_stage": journey_stage,
            "source": source,
            "received_at": datetime.now(UTC),
            "sentiment": Sentiment(label=sentiment[0], score=sentiment[1]),
        }
    )


def value(event: FeedbackEnriched) -> bytes:
    """The record value of an event."""
    return encode(event)

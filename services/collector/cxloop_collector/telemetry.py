"""The collector's Prometheus metrics (one registry per process, bounded labels).

The per-request ones are `cxruntime.loopmetrics` families: updated on the event loop without
prometheus_client's lock, which showed on the hot path."""

from __future__ import annotations

from typing import Final

from prometheus_client import Gauge

from cxruntime.loopmetrics import LoopCounter, LoopHistogram
from cxschema import CHANNELS

OUTCOMES: Final = ("accepted", "duplicate", "rejected", "unavailable", "overloaded")
ENDPOINTS: Final = (
    "/v1/feedback",
    "/v1/feedback/batch",
    "/v1/cloudevents",
    "/v1/channels/email",
    "/v1/channels/email/rate",
    "/v1/channels/contact-centre",
)

EVENTS = LoopCounter(
    "cx_collector_events_total",
    "Feedback events by channel and outcome (accepted, duplicate, rejected, unavailable, "
    "overloaded).",
    ["channel", "outcome"],
)
REQUESTS = LoopCounter(
    "cx_collector_requests_total",
    "HTTP requests to the ingest endpoints by endpoint and status class.",
    ["endpoint", "status"],
)
REQUEST_SECONDS = LoopHistogram(
    "cx_collector_request_seconds",
    "Time to answer an ingest request, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
PRODUCE_SECONDS = LoopHistogram(
    "cx_collector_produce_seconds",
    "Time from handing a batch of records to the Kafka producer to its acknowledgement (acks=all).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "cx_collector_in_flight_events",
    "Events handed to the Kafka producer and not yet acknowledged or failed.",
)
RATE_LIMITED = LoopCounter(
    "cx_collector_rate_limited_total",
    "Requests refused with 429 because their key exceeded its rate.",
)

_EVENT_CHILDREN = {
    (channel, outcome): EVENTS.labels(channel, outcome)
    for channel in (*CHANNELS, "unknown")
    for outcome in OUTCOMES
}


def count_event(channel: str, outcome: str, amount: int = 1) -> None:
    """Count events; an unknown channel is counted as `unknown` to keep the label set bounded."""
    child = _EVENT_CHILDREN.get((channel, outcome))
    if child is None:
        child = _EVENT_CHILDREN[("unknown", outcome)]
    child.inc(amount)

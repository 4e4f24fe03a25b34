"""`cxruntime.loopmetrics` exposes what prometheus_client's own metrics expose for the same
observations."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from cxruntime.loopmetrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.25, 1.0, 5.0)
OBSERVED = (0.0, 0.001, 0.0011, 0.004, 0.005, 0.2, 1.0, 4.99, 5.0, 7.5, 120.0)


def exposition(registry: CollectorRegistry) -> list[str]:
    """The text exposition without `_created` samples, which only prometheus_client writes."""
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


def test_histogram_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("x_seconds", "Time.", ["endpoint"], buckets=BUCKETS, registry=ours)
    reference = Histogram("x_seconds", "Time.", ["endpoint"], buckets=BUCKETS, registry=theirs)
    for index, value in enumerate(OBSERVED):
        endpoint = "/a" if index % 3 else "/b"
        loop.labels(endpoint).observe(value)
        reference.labels(endpoint).observe(value)
    assert exposition(ours) == exposition(theirs)


def test_counter_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("x_events_total", "Events.", ["channel", "outcome"], registry=ours)
    reference = Counter("x_events_total", "Events.", ["channel", "outcome"], registry=theirs)
    for counter in (loop, reference):
        counter.labels("web", "accepted").inc()
        counter.labels("web", "accepted").inc(2)
        counter.labels("email", "rejected").inc(0.5)
        counter.labels("app", "accepted")
    plain_ours = LoopCounter("x_limited", "Refused.", registry=ours)
    plain_theirs = Counter("x_limited", "Refused.", registry=theirs)
    plain_ours.inc()
    plain_theirs.inc()
    assert exposition(ours) == exposition(theirs)


def test_misuse_is_refused() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("x_total", "X.", ["a"], registry=registry)
    with pytest.raises(ValueError, match="labels"):
        counter.labels("one", "two")
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("one").inc(-1)
    for buckets in ((), (1.0, 0.5), (0.5, 0.5), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="buckets"):
            LoopHistogram("y_seconds", "Y.", buckets=buckets, registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopCounter("x_total", "X again.", registry=registry)

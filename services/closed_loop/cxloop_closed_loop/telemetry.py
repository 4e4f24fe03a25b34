"""Prometheus metrics of the closed loop (module level: one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CASES_OPENED = Counter(
    "cx_closed_loop_cases_opened_total",
    "Cases opened (new or reopened), by severity and team.",
    ["severity", "team"],
)
CASES_OPEN = Gauge(
    "cx_closed_loop_cases_open",
    "Active cases (open, acknowledged or contacted), by severity and team.",
    ["severity", "team"],
)
SLA_BREACHES = Counter(
    "cx_closed_loop_sla_breaches_total",
    "SLA deadlines that passed, by deadline kind, severity and team.",
    ["kind", "severity", "team"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "cx_closed_loop_time_to_acknowledge_seconds",
    "Wall-clock time from a case opening (or its latest reopening) to its acknowledgement.",
    ["severity"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800),
)
DELIVERIES = Counter(
    "cx_closed_loop_deliveries_total",
    "Delivery attempts by receiver type and outcome (delivered, retry, dead, deferred).",
    ["receiver_type", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "cx_closed_loop_delivery_seconds",
    "Duration of one delivery attempt.",
    ["receiver_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_BACKLOG = Gauge(
    "cx_closed_loop_outbox_backlog", "Notifications waiting to be delivered (pending)."
)
DEAD_LETTERS = Gauge(
    "cx_closed_loop_dead_letters", "Notifications given up on, waiting for a re-send."
)
BREAKER_OPEN = Gauge(
    "cx_closed_loop_breaker_open", "Receivers whose circuit breaker is open right now."
)
FEEDBACK = Counter(
    "cx_closed_loop_feedback_total",
    "Enriched events seen, by what they did (opened, updated, reopened, ignored, duplicate, "
    "skipped).",
    ["outcome"],
)
FEEDBACK_SKIPPED = Counter(
    "cx_closed_loop_feedback_skipped_total",
    "Events that called for a case but were left alone, by reason (too_old: occurred longer "
    "than max_feedback_age_days ago).",
    ["reason"],
)
CONFIG_RELOADS = Counter(
    "cx_closed_loop_config_reloads_total", "routing.yaml reloads by outcome.", ["outcome"]
)

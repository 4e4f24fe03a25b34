"""The enricher's Prometheus metrics (one registry per process; every label set is bounded)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter

EVENTS: Final = Counter(
    "cx_enricher_events_total",
    "Events enriched, by top-level touchpoint, language and sentiment label.",
    ["touchpoint", "language", "sentiment"],
)
TOUCHPOINTS: Final = Counter(
    "cx_enricher_touchpoints_total",
    "Events tagged, by taxonomy touchpoint id and how it was decided (hint, rule, default).",
    ["touchpoint", "via"],
)
REDACTIONS: Final = Counter(
    "cx_enricher_redactions_total",
    "Personal data replaced by a placeholder, by kind (email, phone, iban, card, name, address, "
    "configured).",
    ["kind"],
)
DEAD_LETTERS: Final = Counter(
    "cx_enricher_dead_letters_total",
    "Raw records sent to the dead-letter topic, by reason (json, schema, empty, enrichment).",
    ["reason"],
)
METRIC_LANGUAGES: Final = frozenset({"de", "en", "fr", "it", "es", "nl", "pl", "tr", "und"})
"""Languages reported as themselves; any other becomes `other`, keeping the label set bounded."""


def language_label(language: str) -> str:
    """The `language` label value of a language code."""
    return language if language in METRIC_LANGUAGES else "other"

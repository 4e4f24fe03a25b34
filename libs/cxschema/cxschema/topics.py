"""Kafka topic names, versioned in the name: a breaking change gets a new topic."""

from typing import Final

RAW: Final = "cx.feedback.raw.v1"
"""Feedback as accepted by the collector (`FeedbackReceived`)."""

ENRICHED: Final = "cx.feedback.enriched.v1"
"""Feedback tagged by the enricher (`FeedbackEnriched`)."""

INVALID: Final = "cx.feedback.invalid.v1"
"""Dead letters: the original bytes and headers plus `cx_error_*` headers saying why."""

TOPICS: Final = (RAW, ENRICHED, INVALID)

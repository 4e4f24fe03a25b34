"""cxloop's event contract: models, topic names, encoding and CloudEvents Kafka headers.

This package imports no Kafka client, database driver or web framework, so every service
and every peer client can depend on it.
"""

from cxschema.codec import (
    decode_enriched,
    decode_received,
    encode,
    feedback_uid,
    key_of,
    record_key,
)
from cxschema.events import (
    CHANNELS,
    JOURNEY_STAGES,
    PLAIN_SUBMISSION,
    Channel,
    Customer,
    FeedbackContext,
    FeedbackEnriched,
    FeedbackReceived,
    FeedbackSubmission,
    Scores,
    Sentiment,
    SentimentLabel,
)
from cxschema.headers import (
    CE_SPECVERSION,
    ERROR_HEADER_PREFIX,
    TYPE_ENRICHED,
    TYPE_REJECTED,
    TYPE_SUBMITTED,
    Headers,
    binary_headers,
    ce_headers,
    header_value,
    invalid_headers,
    time_json,
    without_error_headers,
)
from cxschema.plain import Plain, PlainModel
from cxschema.topics import ENRICHED, INVALID, RAW, TOPICS

__all__ = [
    "CE_SPECVERSION",
    "CHANNELS",
    "ENRICHED",
    "ERROR_HEADER_PREFIX",
    "INVALID",
    "JOURNEY_STAGES",
    "PLAIN_SUBMISSION",
    "RAW",
    "TOPICS",
    "TYPE_ENRICHED",
    "TYPE_REJECTED",
    "TYPE_SUBMITTED",
    "Channel",
    "Customer",
    "FeedbackContext",
    "FeedbackEnriched",
    "FeedbackReceived",
    "FeedbackSubmission",
    "Headers",
    "Plain",
    "PlainModel",
    "Scores",
    "Sentiment",
    "SentimentLabel",
    "binary_headers",
    "ce_headers",
    "decode_enriched",
    "decode_received",
    "encode",
    "feedback_uid",
    "header_value",
    "invalid_headers",
    "key_of",
    "record_key",
    "time_json",
    "without_error_headers",
]

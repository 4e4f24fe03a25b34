"""JSON encoding of events, the record key and the downstream deduplication id."""

from __future__ import annotations

import functools
import hashlib

from pydantic import BaseModel

from cxschema.events import FeedbackEnriched, FeedbackReceived


def encode(event: BaseModel) -> bytes:
    """Serialise an event to compact JSON bytes (None fields left out)."""
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def decode_received(value: bytes) -> FeedbackReceived:
    """Parse a `cx.feedback.raw.v1` value; raises `pydantic.ValidationError`."""
    return FeedbackReceived.model_validate_json(value)


def decode_enriched(value: bytes) -> FeedbackEnriched:
    """Parse a `cx.feedback.enriched.v1` value; raises `pydantic.ValidationError`."""
    return FeedbackEnriched.model_validate_json(value)


def feedback_uid(source: str, event_id: str) -> str:
    """The idempotency key of an event: (source, id) hashed to 32 hex characters.

    Every sink deduplicates on it, so a record delivered twice is counted once.
    """
    digest = _source_hash(source).copy()
    digest.update(event_id.encode())
    return digest.hexdigest()[:32]


@functools.lru_cache(maxsize=1024)
def _source_hash(source: str) -> hashlib._Hash:
    # SHA-256 state after `source` and the separator: sources repeat (one per API key or
    # CloudEvents producer), so each event hashes only its id (about half the cost).
    return hashlib.sha256(f"{source}\x00".encode())


def record_key(event: FeedbackReceived) -> bytes:
    """The Kafka record key of an event (see `key_of`)."""
    customer_id = None if event.customer is None else event.customer.id
    return key_of(customer_id, feedback_uid(event.source, event.id))


def key_of(customer_id: str | None, uid: str) -> bytes:
    """The Kafka record key: the customer id, so one customer's feedback stays in order.

    Anonymous feedback is keyed by its own uid, which spreads it over the partitions.
    """
    return uid.encode() if customer_id is None else customer_id.encode()

"""The native JSON event and batch: parsing and validation (pure)."""

from __future__ import annotations

from typing import Any, Final

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from cxloop_collector.intake import (
    BodyError,
    Errors,
    field_error,
    field_errors,
    malformed_json,
    too_many,
)
from cxschema import PLAIN_SUBMISSION, Plain

MAX_BATCH_EVENTS: Final = 500
MAX_BATCH_BYTES: Final = 1024 * 1024


_BATCH: Final = SchemaValidator(
    cs.typed_dict_schema(
        {"events": cs.typed_dict_field(cs.list_schema(PLAIN_SUBMISSION.schema))},
        extra_behavior="forbid",
    )
)


def validate_batch(body: bytes) -> list[Plain] | None:
    """Every event of a batch in one validation pass, or None when any part is invalid (the
    caller then validates item by item to report each failure)."""
    try:
        events: list[Plain] = _BATCH.validate_json(body)["events"]
    except ValidationError:
        return None
    return events if len(events) <= MAX_BATCH_EVENTS else None


def parse_batch(body: bytes) -> list[Any]:
    """The `events` list of a batch body, at most `MAX_BATCH_EVENTS` long."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed_json(exc) from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BodyError(
            422,
            'The body must be {"events": [...]}.',
            [field_error("events", "a list of events is required", "list_type")],
        )
    extra = sorted(set(document) - {"events"})
    if extra:
        raise BodyError(
            422,
            "Unknown fields in the batch.",
            [
                field_error(name, "Extra inputs are not permitted", "extra_forbidden")
                for name in extra
            ],
        )
    events: list[Any] = document["events"]
    if len(events) > MAX_BATCH_EVENTS:
        raise too_many(len(events), MAX_BATCH_EVENTS, field="events")
    return events


def validate_item(item: Any, *, prefix: str = "") -> Plain | Errors:
    """An item of a batch as a submission, or its field errors."""
    try:
        return PLAIN_SUBMISSION.validate_python(item)
    except ValidationError as exc:
        return field_errors(exc, prefix=prefix, whole="(event)")

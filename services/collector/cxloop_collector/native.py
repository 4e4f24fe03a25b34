"""The native JSON event and batch: parsing and validation (pure)."""

from __future__ import annotations

from typing import Any, Final

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from cxloop_collector.intake import MAX_EVENT_BYTES, field_errors
from cxschema import PLAIN_SUBMISSION, Plain

MAX_BATCH_EVENTS: Final = 500
MAX_BATCH_BYTES: Final = 1024 * 1024


class BodyError(ValueError):
    """A body that cannot be read as the expected JSON shape; `status` is 400 or 422."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


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
        raise BodyError(
            400, "The body is not valid JSON.", [{"field": "(body)", "message": str(exc)}]
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BodyError(
            422,
            'The body must be {"events": [...]}.',
            [{"field": "events", "message": "a list of events is required"}],
        )
    extra = sorted(set(document) - {"events"})
    if extra:
        raise BodyError(
            422,
            "Unknown fields in the batch.",
            [{"field": name, "message": "extra inputs are not permitted"} for name in extra],
        )
    events: list[Any] = document["events"]
    if len(events) > MAX_BATCH_EVENTS:
        raise BodyError(
            422,
            f"A batch holds at most {MAX_BATCH_EVENTS} events.",
            [
                {
                    "field": "events",
                    "message": f"{len(events)} events; at most {MAX_BATCH_EVENTS} allowed",
                }
            ],
        )
    return events


def validate_item(item: Any, *, prefix: str = "") -> Plain | list[dict[str, str]]:
    """An item of a batch as a submission, or its field errors."""
    try:
        return PLAIN_SUBMISSION.validate_python(item)
    except ValidationError as exc:
        return field_errors(exc, prefix=prefix)


def oversized(value: bytes) -> list[dict[str, str]] | None:
    """Errors when an encoded event is beyond the size limit (with room for added fields)."""
    if len(value) <= MAX_EVENT_BYTES + 1024:
        return None
    return [
        {
            "field": "(event)",
            "message": f"the event's JSON exceeds {MAX_EVENT_BYTES} bytes",
            "type": "too_large",
        }
    ]

"""CloudEvents 1.0 over HTTP: structured, binary and batched modes, parsed into submissions.

`type` must be `com.cxloop.feedback.submitted` and `data` the native event; the event's
`source` and `id` become the accepted event's, so `source` + `id` is the idempotency key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from cxloop_collector.intake import MAX_SOURCE_CHARS, field_errors
from cxschema import CE_SPECVERSION, PLAIN_SUBMISSION, TYPE_SUBMITTED, Plain
from cxschema.events import MAX_ID_CHARS

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
_JSON_TYPES: Final = ("application/json", "text/json")
_TIME = TypeAdapter(AwareDatetime)

Errors = list[dict[str, str]]


@dataclass(frozen=True)
class CloudEvent:
    """A feedback CloudEvent: its identity and the native event it carries."""

    id: str
    source: str
    time: datetime | None
    submission: Plain


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _attributes(attrs: Mapping[str, Any], errors: Errors) -> tuple[str, str, datetime | None]:
    if attrs.get("specversion") != CE_SPECVERSION:
        errors.append(_error("specversion", f"must be {CE_SPECVERSION!r}"))
    if attrs.get("type") != TYPE_SUBMITTED:
        errors.append(_error("type", f"must be {TYPE_SUBMITTED!r}"))
    event_id = attrs.get("id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID_CHARS:
        errors.append(_error("id", f"a string of 1 to {MAX_ID_CHARS} characters is required"))
        event_id = ""
    source = attrs.get("source")
    if not isinstance(source, str) or not source or len(source) > MAX_SOURCE_CHARS:
        errors.append(
            _error("source", f"a URI-reference of 1 to {MAX_SOURCE_CHARS} characters is required")
        )
        source = ""
    time: datetime | None = None
    raw_time = attrs.get("time")
    if raw_time is not None:
        try:
            time = _TIME.validate_python(raw_time)
        except ValidationError:
            errors.append(_error("time", "must be an RFC 3339 time stamp with an offset"))
    content_type = attrs.get("datacontenttype")
    if content_type is not None and media_type(str(content_type)) not in _JSON_TYPES:
        errors.append(_error("datacontenttype", "must be application/json"))
    return event_id, source, time


def _submission(data: Any, event_id: str, errors: Errors, prefix: str = "data") -> Plain | None:
    try:
        submission = PLAIN_SUBMISSION.validate_python(data)
    except ValidationError as exc:
        errors.extend(field_errors(exc, prefix=prefix))
        return None
    given = submission.get("id")
    if given is not None and event_id and given != event_id:
        errors.append(_error(f"{prefix}.id", "differs from the CloudEvent's id"))
        return None
    return submission


def from_structured(document: Any) -> CloudEvent | Errors:
    """One event of structured or batched mode (a JSON object), or its field errors."""
    if not isinstance(document, dict):
        return [_error("(event)", "a CloudEvent must be a JSON object")]
    errors: Errors = []
    event_id, source, time = _attributes(document, errors)
    if "data_base64" in document:
        errors.append(_error("data_base64", "binary data is not accepted; send JSON `data`"))
        return errors
    if "data" not in document:
        errors.append(_error("data", "the native feedback event is required"))
        return errors
    submission = _submission(document["data"], event_id, errors)
    if errors or submission is None:
        return errors
    return CloudEvent(id=event_id, source=source, time=time, submission=submission)


def from_binary(headers: Mapping[str, str], body: bytes) -> CloudEvent | Errors:
    """A binary-mode event: attributes in percent-encoded `ce-*` headers, `data` the body."""
    attrs: dict[str, Any] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            attrs[lower[3:]] = unquote(value)
    content_type = headers.get("content-type")
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    errors: Errors = []
    event_id, source, time = _attributes(attrs, errors)
    try:
        submission = PLAIN_SUBMISSION.validate_json(body)
    except ValidationError as exc:
        errors.extend(field_errors(exc, prefix="data"))
        return errors
    given = submission.get("id")
    if given is not None and event_id and given != event_id:
        errors.append(_error("data.id", "differs from the CloudEvent's id"))
    if errors:
        return errors
    return CloudEvent(id=event_id, source=source, time=time, submission=submission)

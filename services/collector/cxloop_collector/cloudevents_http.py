"""CloudEvents 1.0 over HTTP: structured, binary and batched modes, parsed into submissions.

`type` must be `com.cxloop.feedback.submitted` and `data` the native event; the event's
`source` and `id` become the accepted event's, so `source` + `id` is the idempotency key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from cxloop_collector.intake import (
    MAX_SOURCE_CHARS,
    Errors,
    field_error,
    field_errors,
    moment_error,
    text_error,
)
from cxschema import CE_SPECVERSION, PLAIN_SUBMISSION, TYPE_SUBMITTED, Plain
from cxschema.events import MAX_ID_CHARS

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
_JSON_TYPES: Final = ("application/json", "text/json")
_TIME = TypeAdapter(AwareDatetime)
_BAD_PERCENT: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_PREFIX: Final = b"ce-"


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


def _error(field: str, message: str, kind: str = "value_error") -> dict[str, str]:
    return field_error(field, message, kind)


def _attributes(
    attrs: Mapping[str, Any], errors: Errors, received_at: datetime
) -> tuple[str, str, datetime | None]:
    if attrs.get("specversion") != CE_SPECVERSION:
        message = "is required" if attrs.get("specversion") is None else "is not supported"
        errors.append(_error("specversion", f"{message}: it must be {CE_SPECVERSION!r}"))
    if attrs.get("type") != TYPE_SUBMITTED:
        errors.append(_error("type", f"must be {TYPE_SUBMITTED!r}"))
    event_id = attrs.get("id")
    problem = text_error(event_id, MAX_ID_CHARS) if isinstance(event_id, str) else None
    if not isinstance(event_id, str) or problem:
        errors.append(
            _error("id", problem or f"a string of 1 to {MAX_ID_CHARS} characters is required")
        )
        event_id = ""
    source = attrs.get("source")
    problem = text_error(source, MAX_SOURCE_CHARS) if isinstance(source, str) else None
    if not isinstance(source, str) or problem:
        errors.append(
            _error(
                "source",
                problem or f"a URI-reference of 1 to {MAX_SOURCE_CHARS} characters is required",
            )
        )
        source = ""
    time: datetime | None = None
    raw_time = attrs.get("time")
    if raw_time is not None:
        try:
            if not isinstance(raw_time, str):
                raise ValueError
            time = _TIME.validate_python(raw_time)
        except (ValueError, ValidationError):
            errors.append(_error("time", "must be an RFC 3339 time stamp with an offset"))
        else:
            if problem := moment_error(time, received_at):
                errors.append(_error("time", problem, "out_of_range"))
                time = None
    content_type = attrs.get("datacontenttype")
    if content_type is not None and media_type(str(content_type)) not in _JSON_TYPES:
        errors.append(_error("datacontenttype", "must be application/json"))
    return event_id, source, time


def _check_data(submission: Plain, event_id: str, errors: Errors, received_at: datetime) -> None:
    """Add the errors of `data` that its schema cannot see: an id other than the event's, a
    time more than a day after the receipt."""
    given = submission.get("id")
    if given is not None and event_id and given != event_id:
        errors.append(_error("data.id", "differs from the CloudEvent's id"))
    occurred_at = submission.get("occurred_at")
    if occurred_at is not None and (problem := moment_error(occurred_at, received_at)):
        errors.append(_error("data.occurred_at", problem, "out_of_range"))


def from_structured(document: Any, received_at: datetime) -> CloudEvent | Errors:
    """One event of structured or batched mode (a JSON object), or its field errors."""
    if not isinstance(document, dict):
        return [_error("(event)", "a CloudEvent must be a JSON object", "model_type")]
    errors: Errors = []
    event_id, source, time = _attributes(document, errors, received_at)
    if "data_base64" in document:
        errors.append(_error("data_base64", "binary data is not accepted; send JSON `data`"))
        return errors
    if "data" not in document:
        errors.append(_error("data", "the native feedback event is required", "missing"))
        return errors
    try:
        submission = PLAIN_SUBMISSION.validate_python(document["data"])
    except ValidationError as exc:
        return errors + field_errors(exc, prefix="data")
    _check_data(submission, event_id, errors, received_at)
    if errors:
        return errors
    return CloudEvent(id=event_id, source=source, time=time, submission=submission)


def is_binary(raw_headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """True when any header is a binary-mode attribute (`ce-*`)."""
    return any(name.lower().startswith(_PREFIX) for name, _ in raw_headers)


def decode_attribute(raw: bytes) -> str:
    """A binary-mode header's value: percent-decoded, then UTF-8 (CloudEvents HTTP binding
    3.1.3.2). Raises `ValueError` for a `%` without two hex digits or bytes that are not UTF-8;
    decoding leniently would map different ids onto one (`%FF` and `%FE` both to U+FFFD)."""
    bad = _BAD_PERCENT.search(raw)
    if bad is not None:
        at = raw[bad.start() : bad.start() + 3].decode("latin-1")
        raise ValueError(f"invalid percent-encoding {at!r}: '%' must be followed by 2 hex digits")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text once percent-decoded") from None


def from_binary(
    raw_headers: Sequence[tuple[bytes, bytes]], body: bytes, received_at: datetime
) -> CloudEvent | Errors:
    """A binary-mode event: attributes in percent-encoded `ce-*` headers, `data` the body.

    A body that is not JSON gives an error of type `json_invalid` (answered 400)."""
    attrs: dict[str, Any] = {}
    errors: Errors = []
    for name, value in raw_headers:
        lower = name.lower()
        if lower == b"content-type":
            attrs["datacontenttype"] = value.decode("latin-1")
        if not lower.startswith(_PREFIX):
            continue
        attribute = lower[len(_PREFIX) :].decode("latin-1")
        if attribute in attrs:
            errors.append(_error(attribute, f"the ce-{attribute} header is given more than once"))
            continue
        try:
            attrs[attribute] = decode_attribute(value)
        except ValueError as exc:
            errors.append(_error(attribute, f"the ce-{attribute} header: {exc}"))
            attrs[attribute] = None
    # An attribute whose header could not be decoded is reported once, for that.
    invalid = {error["field"] for error in errors}
    valid = {name: value for name, value in attrs.items() if name not in invalid}
    attribute_errors: Errors = []
    event_id, source, time = _attributes(valid, attribute_errors, received_at)
    errors += [error for error in attribute_errors if error["field"] not in invalid]
    try:
        submission = PLAIN_SUBMISSION.validate_json(body)
    except ValidationError as exc:
        return errors + field_errors(exc, prefix="data")
    _check_data(submission, event_id, errors, received_at)
    if errors:
        return errors
    return CloudEvent(id=event_id, source=source, time=time, submission=submission)

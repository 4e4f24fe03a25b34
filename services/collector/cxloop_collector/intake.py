"""What the collector accepts and how it says no (pure functions): the record of a validated
submission, the checks `FeedbackReceived` makes beyond the submission's schema, and the
errors a refusal lists."""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import orjson
from pydantic import ValidationError

from cxloop_collector.publisher import Record
from cxschema import (
    PLAIN_SUBMISSION,
    TYPE_SUBMITTED,
    Plain,
    binary_headers,
    feedback_uid,
    key_of,
    time_json,
)
from cxschema.events import EARLIEST, LATEST, MAX_AHEAD, MAX_COMMENT_CHARS, MAX_ID_CHARS

MAX_EVENT_BYTES: Final = 32 * 1024
"""SPEC's limit of an event's JSON, counted as the collector writes the submission: compact
UTF-8 without escapes, the fields the channel gave. So the same event has the same size
however its client wrote it (`\\u00fc` or `ü`, indented or not) and on every endpoint."""
MAX_EVENT_BODY_BYTES: Final = 4 * MAX_EVENT_BYTES
"""The largest request body read for one event: room for escapes (`\\ud83d\\ude00` is 12
bytes for a 4-byte character) and indentation; the event itself must fit `MAX_EVENT_BYTES`."""
MAX_SOURCE_CHARS: Final = 500
KEY_SOURCE_PREFIX: Final = "/cxloop/keys/"

Errors = list[dict[str, str]]
"""Failing fields as `{"field", "message", "type"}`, as the problem answers list them."""


class Refused(ValueError):
    """An event the collector refuses although its fields passed the schema; `errors` name
    each failing field."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("; ".join(f"{error['field']}: {error['message']}" for error in errors))
        self.errors = errors


@functools.lru_cache(maxsize=4096)
def key_source(key_name: str) -> str:
    """The CloudEvents `source` of events posted natively with the key named `key_name`."""
    return KEY_SOURCE_PREFIX + quote(key_name, safe="")[: MAX_SOURCE_CHARS - len(KEY_SOURCE_PREFIX)]


_ids = random.SystemRandom()
_fast = random.Random(_ids.getrandbits(128))


_VARIANT: Final = "89ab89ab89ab89ab"
"""The UUID variant digit (binary 10xx) for each value of a random hex digit."""


def new_id() -> str:
    """A random (version 4) UUID for an event posted without an id.

    Drawn from a PRNG seeded once from the OS: ids must be unique, not secret, and reading
    the OS source per request costs a system call on the hot path.
    """
    h = _fast.randbytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"


def moment_error(moment: datetime, received_at: datetime) -> str | None:
    """Why `moment` cannot be an event's `occurred_at` when received at `received_at`, or None.

    `FeedbackReceived`'s rules: from 1970 to 2099, at most `MAX_AHEAD` after the receipt."""
    if not EARLIEST <= moment < LATEST:
        return f"must lie between 1970 and 2099, not {moment.isoformat()}"
    if moment - received_at > MAX_AHEAD:
        return (
            f"{moment.isoformat()} lies more than {MAX_AHEAD.days} day after the time the "
            f"collector received the event ({received_at.isoformat(timespec='seconds')})"
        )
    return None


def text_error(value: str, max_chars: int) -> str | None:
    """Why `value` cannot be an id or source of at most `max_chars` characters, or None."""
    if not value or len(value) > max_chars:
        return f"a string of 1 to {max_chars} characters is required"
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    return None


def accept(
    submission: Plain,
    *,
    source: str,
    received_at: datetime,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Record:
    """The Kafka record of an accepted submission (validated by `PLAIN_SUBMISSION`).

    Its value is the `FeedbackReceived` event: the submission with its id (`event_id`, else the
    submission's, else a new UUID), its `source`, `occurred_at` (the submission's, else
    `occurred_at`, else `received_at`) and `received_at`. The key and the CloudEvents headers
    follow from them.

    Raises `Refused` where `FeedbackReceived` would refuse what the schema of the submission
    cannot see: `source` and `event_id` (empty, too long, U+0000), an `occurred_at` outside
    1970..2099 or more than `MAX_AHEAD` after `received_at`; and an event whose JSON is over
    `MAX_EVENT_BYTES` (type `too_large`).

    The value is the submission's JSON with the new fields appended, not a `FeedbackReceived`
    built and serialised: the submission is validated already and the new fields are checked
    here, and the model costs more than the rest of the record. Fields the channel left out
    stay out (readers apply the model's defaults). `tests/collector/test_intake.py` checks
    that every value validates as the event built field by field, and that `accept` refuses
    exactly what that event's model refuses.
    """
    given = submission.get("id")
    the_id = event_id or given or new_id()
    # `event_id` wins over another id in the submission (CloudEvents refuse those).
    value = PLAIN_SUBMISSION.to_json(submission, exclude=None if given in (None, the_id) else _ID)
    submitted_at = submission.get("occurred_at")
    received, latest_midnight = _receipt(received_at)
    if submitted_at is not None:
        # A cheap test first: the event lies less than a day after the start of its local
        # day, so if that start (seconds since year 1, UTC) is not after `latest_midnight`,
        # it is at most `MAX_AHEAD` after the receipt. Only otherwise the exact subtraction,
        # which calls `utcoffset` on both datetimes (about 5,000 instructions with pydantic's
        # time zones, the cheap test about half).
        offset = submitted_at.tzinfo.utcoffset(submitted_at)
        ahead = (
            submitted_at.toordinal() * _DAY - offset.days * _DAY - offset.seconds > latest_midnight
            and submitted_at - received_at > MAX_AHEAD
        )
    else:
        ahead = occurred_at is not None  # CloudEvents' `time`: checked in full below
    if (
        ahead
        or len(value) > MAX_EVENT_BYTES
        or (event_id and text_error(event_id, MAX_ID_CHARS) is not None)
        or not 0 < len(source) <= MAX_SOURCE_CHARS
        or "\x00" in source
    ):
        _check(value, source, received_at, event_id, submitted_at or occurred_at)
    tail = [b',"source":', orjson.dumps(source), b',"received_at":', received]
    if the_id != given:
        tail += (b',"id":', orjson.dumps(the_id))
    if submitted_at is not None:
        at = time_json(submitted_at)
    else:
        at = received if occurred_at is None else time_json(occurred_at)
        tail += (b',"occurred_at":', at)
    tail.append(b"}")
    uid = feedback_uid(source, the_id)
    customer = submission.get("customer")
    customer_id = None if customer is None else customer["id"]
    # Positional: keywords cost a third of a microsecond more per record (order: uid, event_id,
    # channel, key, value, headers).
    return Record(
        uid,
        the_id,
        submission["channel"],
        key_of(customer_id, uid),
        value[:-1] + b"".join(tail),  # `channel` is required: the object is never empty
        binary_headers(the_id, source, TYPE_SUBMITTED, at[1:-1], customer_id),
    )


def _check(
    value: bytes,
    source: str,
    received_at: datetime,
    event_id: str | None,
    occurred_at: datetime | None,
) -> None:
    """Raise `Refused` naming every field of the event `accept` may not write (the slow path of
    its one-line test; an event passing here is written)."""
    errors: Errors = []
    if len(value) > MAX_EVENT_BYTES:
        errors.append(
            field_error(
                "(event)",
                f"too large: the event's JSON takes {len(value):,} bytes (compact UTF-8), "
                f"at most {MAX_EVENT_BYTES:,} are accepted",
                "too_large",
            )
        )
    if occurred_at is not None and (problem := moment_error(occurred_at, received_at)):
        errors.append(field_error("occurred_at", problem, "out_of_range"))
    if event_id and (problem := text_error(event_id, MAX_ID_CHARS)):
        errors.append(field_error("id", problem, "value_error"))
    if problem := text_error(source, MAX_SOURCE_CHARS):
        errors.append(field_error("source", problem, "value_error"))
    if errors:
        raise Refused(errors)


_ID: Final = {"id"}
_DAY: Final = 86_400
_AHEAD_LESS_A_DAY: Final = int(MAX_AHEAD.total_seconds()) - _DAY
_last_received: list[Any] = [None, b"", 0]
"""The last time of receipt `_receipt` saw, its JSON and its latest midnight."""


def _receipt(moment: datetime) -> tuple[bytes, int]:
    """`time_json(moment)`, and the latest instant (seconds since year 1, UTC) at which an
    event's local day may begin for the event to be at most `MAX_AHEAD` after `moment`: the
    midnight (UTC) of `moment`'s day plus `MAX_AHEAD` minus a day. Remembers the last one:
    every event of a batch shares its time of receipt."""
    if _last_received[0] is not moment:
        # The collector's clock is UTC (`Gate.now`); converting costs as much as the rest.
        utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
        _last_received[1] = time_json(moment)
        _last_received[2] = utc.toordinal() * _DAY + _AHEAD_LESS_A_DAY
        _last_received[0] = moment
    return _last_received[1], _last_received[2]


def field_error(field: str, message: str, kind: str) -> dict[str, str]:
    """One entry of a problem's `errors`."""
    return {"field": field, "message": message, "type": kind}


class BodyError(ValueError):
    """A body that cannot be read as the expected JSON shape; `status` is 400, 413 or 422."""

    def __init__(self, status: int, message: str, errors: Errors) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


def malformed_json(exc: orjson.JSONDecodeError) -> BodyError:
    """The 400 of a body that is not JSON."""
    return BodyError(
        400, "The body is not valid JSON.", [field_error("(body)", str(exc), "json_invalid")]
    )


def too_many(count: int, limit: int, *, field: str, what: str = "events") -> BodyError:
    """The 413 of a request with more than `limit` items (SPEC.md: too large is 413)."""
    return BodyError(
        413,
        f"A request holds at most {limit:,} {what}.",
        [field_error(field, f"too large: {count:,} {what}, at most {limit:,}", "too_large")],
    )


_OBJECT_TYPES: Final = frozenset({"model_type", "model_attributes_type", "dict_type"})
_RANGE_TYPES: Final = frozenset({"less_than", "greater_than_equal"})


def field_errors(error: ValidationError, *, prefix: str = "", whole: str = "(body)") -> Errors:
    """Each failing field of a validation error as `{"field", "message", "type"}`; `whole`
    names the validated document itself.

    Worded for the API's users: no model class names ("instance of Customer"), pydantic's
    "Value error, " prefix dropped, a time outside the calendar's range said as such, and a
    comment over its limit reported as too large (type `too_large`, which the single-event
    endpoints answer with 413, as SPEC.md asks).
    """
    out = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"])
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or whole)
        kind = item["type"]
        message = item["msg"]
        if kind == "string_too_long" and item["loc"] == ("comment",):
            kind = "too_large"
            message = (
                f"too large: {len(item['input']):,} characters, a comment holds at most "
                f"{MAX_COMMENT_CHARS:,}"
            )
        elif kind in _RANGE_TYPES and item["loc"] == ("occurred_at",):
            message = f"must lie between 1970 and 2099, not {item['input']}"
        elif kind in _OBJECT_TYPES:
            message = "Input should be an object"
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        out.append({"field": field, "message": message, "type": kind})
    return out


def status_of(errors: Iterable[dict[str, str]]) -> int:
    """The HTTP status of a refusal: 400 for a body that is not JSON, 413 when something is
    too large (SPEC.md: "Too large: 413"), 422 otherwise."""
    kinds = {item.get("type") for item in errors}
    if "json_invalid" in kinds:
        return 400
    if "too_large" in kinds:
        return 413
    return 422

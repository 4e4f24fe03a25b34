"""Turning a validated submission into the record the collector writes (pure functions)."""

from __future__ import annotations

import functools
import random
from datetime import datetime
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

MAX_EVENT_BYTES: Final = 32 * 1024
MAX_SOURCE_CHARS: Final = 500
KEY_SOURCE_PREFIX: Final = "/cxloop/keys/"


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

    The value is the submission's JSON with the new fields appended, not a `FeedbackReceived`
    built and serialised: the submission is validated already and the new fields are built
    here within their constraints, and the model costs more than the rest of the record.
    Fields the channel left out stay out (readers apply the model's defaults).
    `tests/collector/test_intake.py` checks that every value validates as the event built field
    by field.
    """
    given = submission.get("id")
    the_id = event_id or given or new_id()
    # `event_id` wins over another id in the submission (CloudEvents refuse those).
    value = PLAIN_SUBMISSION.to_json(submission, exclude=None if given in (None, the_id) else _ID)
    received = _received_json(received_at)
    tail = [b',"source":', orjson.dumps(source), b',"received_at":', received]
    if the_id != given:
        tail += (b',"id":', orjson.dumps(the_id))
    submitted_at = submission.get("occurred_at")
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


_ID: Final = {"id"}
_last_received: list[Any] = [None, b""]
"""The last time of receipt `_received_json` wrote, and its JSON."""


def _received_json(moment: datetime) -> bytes:
    """`time_json(moment)`, remembering the last one: every event of a batch shares its time
    of receipt."""
    if _last_received[0] is not moment:
        _last_received[1] = time_json(moment)
        _last_received[0] = moment
    json: bytes = _last_received[1]
    return json


def field_errors(error: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    """Each failing field of a validation error as `{"field", "message", "type"}`."""
    out = []
    for item in error.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in item["loc"])
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "(body)")
        out.append({"field": field, "message": item["msg"], "type": item["type"]})
    return out


def is_malformed(error: ValidationError) -> bool:
    """True when the body is not JSON at all (400) rather than JSON that fails the schema (422)."""
    return any(item["type"] == "json_invalid" for item in error.errors(include_url=False))

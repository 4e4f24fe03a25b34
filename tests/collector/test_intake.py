"""The pure intake functions: the accepted event's Kafka record, ids, keys and limits."""

from __future__ import annotations

import functools
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cxloop_collector.intake import (
    MAX_EVENT_BYTES,
    Refused,
    accept,
    field_errors,
    key_source,
    new_id,
    status_of,
)
from cxloop_collector.memo import UidMemo
from cxloop_collector.native import validate_item
from cxloop_collector.publisher import Record
from cxloop_collector.ratelimit import RateLimiter
from cxschema import (
    CHANNELS,
    PLAIN_SUBMISSION,
    TYPE_SUBMITTED,
    FeedbackReceived,
    Plain,
    ce_headers,
    encode,
    feedback_uid,
    record_key,
)
from cxschema.events import EARLIEST, LATEST, MAX_AHEAD
from tests.collector.helpers import assert_within

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def received(
    submission: Plain,
    *,
    source: str,
    received_at: datetime,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    generated_id: str,
) -> FeedbackReceived:
    """The accepted event built field by field and validated whole: what `accept` must write."""
    return FeedbackReceived.model_validate(
        {
            **submission,
            "id": event_id or submission.get("id") or generated_id,
            "occurred_at": submission.get("occurred_at") or occurred_at or received_at,
            "source": source,
            "received_at": received_at,
        }
    )


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members, refusing a name that occurs twice (parsers differ on which
    one wins)."""
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"duplicate names in {names}"
    return dict(pairs)


def assert_record_of(record: Record, event: FeedbackReceived) -> None:
    """`record` is `event`'s Kafka record: the same event, key, headers and uid; its JSON
    members are the event's as the model writes them (those left at their default may be left
    out), no name twice."""
    assert FeedbackReceived.model_validate_json(record.value) == event
    written = json.loads(record.value, object_pairs_hook=unique_keys)
    assert_within(written, orjson.loads(encode(event)))
    assert {"id", "source", "received_at", "occurred_at", "channel"} <= written.keys()
    assert record.uid == feedback_uid(event.source, event.id)
    assert record.event_id == event.id
    assert record.channel == event.channel
    assert record.key == record_key(event)
    assert record.headers == ce_headers(event, ce_type=TYPE_SUBMITTED)


def test_accept_writes_the_validated_event() -> None:
    submission = PLAIN_SUBMISSION.validate_json(
        b'{"channel":"web","customer":{"id":"crm-1","region":"DE-BY"},"scores":{"nps":3},'
        b'"comment":" zu sp\xc3\xa4t ","context":{"url":"https://shop.example"}}'
    )
    record = accept(submission, source="/cxloop/keys/web", received_at=NOW, event_id="e-1")
    event = received(
        submission, source="/cxloop/keys/web", received_at=NOW, event_id="e-1", generated_id=""
    )
    assert_record_of(record, event)
    assert record.uid == feedback_uid("/cxloop/keys/web", "e-1")
    assert record.key == b"crm-1"
    assert event.comment == "zu sp\u00e4t"


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
"""Any text (U+0000 included, but rarely drawn)."""
_NUL_TEXT = st.builds("{}\x00{}".format, st.text(max_size=5), st.text(max_size=5))
_SOME_NUL = st.one_of(_TEXT, _TEXT, _TEXT, _NUL_TEXT)
"""Text holding U+0000 a quarter of the time: the schema and `accept` must refuse it."""
_OFFSETS = st.integers(-24 * 60 + 1, 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_RECEIVED = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30), timezones=_OFFSETS
)
_TIMES = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=_OFFSETS
)
"""Times on both sides of 1970..2099, the range of an event's times."""
_SUBMISSIONS = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(CHANNELS),
        "scores": st.fixed_dictionaries({"nps": st.integers(0, 10)}),
    },
    optional={
        "id": _TEXT,
        "customer": st.fixed_dictionaries(
            {"id": _TEXT.filter(str.strip)}, optional={"segment": _TEXT, "region": _TEXT}
        ),
        "comment": _SOME_NUL,
        "language": st.sampled_from(("de", "en-GB")),
        "touchpoint": _TEXT,
        "context": st.fixed_dictionaries({}, optional={"url": _TEXT, "subject": _TEXT}),
    },
)


def _near(received_at: datetime) -> st.SearchStrategy[datetime]:
    """Times around `received_at` in any time zone: before it, and on both sides of a day
    after it."""
    deltas = st.timedeltas(timedelta(days=-3), timedelta(days=3)) | st.sampled_from(
        (MAX_AHEAD, MAX_AHEAD + timedelta(microseconds=1), MAX_AHEAD + timedelta(seconds=1))
    )
    return st.builds(lambda delta, zone: (received_at + delta).astimezone(zone), deltas, _OFFSETS)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    return []


def _refusals(
    *, source: str, event_id: str | None, at: datetime | None, received_at: datetime
) -> set[str]:
    """The fields `FeedbackReceived` refuses beyond the submission's own schema."""
    refused = set()
    if "\x00" in source:
        refused.add("source")
    if event_id and "\x00" in event_id:
        refused.add("id")
    if at is not None and (not EARLIEST <= at < LATEST or at - received_at > MAX_AHEAD):
        refused.add("occurred_at")
    return refused


@settings(max_examples=400, deadline=None)
@given(
    fields=_SUBMISSIONS,
    source=_SOME_NUL,
    received_at=_RECEIVED,
    event_id=st.none() | st.just("") | _SOME_NUL,
    data=st.data(),
)
def test_accept_writes_the_event_for_any_submission(
    fields: dict[str, Any],
    source: str,
    received_at: datetime,
    event_id: str | None,
    data: st.DataObject,
) -> None:
    """`accept` writes the event built field by field whenever `FeedbackReceived` accepts it,
    and refuses, naming the fields, exactly when it does not (U+0000 in the source or the
    CloudEvent's id, a time outside 1970..2099 or more than a day after the receipt)."""
    times = st.none() | _TIMES | _near(received_at)
    submitted_at = data.draw(times, label="submitted occurred_at")
    occurred_at = data.draw(times, label="occurred_at argument")
    if submitted_at is not None:
        fields = {**fields, "occurred_at": submitted_at.isoformat()}
    try:
        submission = PLAIN_SUBMISSION.validate_json(orjson.dumps(fields))
    except ValidationError:
        event("refused by the schema")
        # The schema refuses U+0000 in any string and times outside 1970..2099.
        assert any("\x00" in text for text in _strings(fields)) or not (
            submitted_at is None or EARLIEST <= submitted_at < LATEST
        )
        return
    assert submitted_at is None or EARLIEST <= submitted_at < LATEST
    at = submitted_at if submitted_at is not None else occurred_at
    refusals = _refusals(source=source, event_id=event_id, at=at, received_at=received_at)
    build = functools.partial(
        received,
        submission,
        source=source,
        received_at=received_at,
        event_id=event_id,
        occurred_at=occurred_at,
    )
    event(f"refused: {sorted(refusals)}" if refusals else "accepted")
    if refusals:
        with pytest.raises(ValidationError):
            build(generated_id="generated")
        with pytest.raises(Refused) as refused:
            accept(
                submission,
                source=source,
                received_at=received_at,
                event_id=event_id,
                occurred_at=occurred_at,
            )
        assert {error["field"] for error in refused.value.errors} == refusals
        return
    record = accept(
        submission,
        source=source,
        received_at=received_at,
        event_id=event_id,
        occurred_at=occurred_at,
    )
    assert_record_of(record, build(generated_id=record.event_id))
    if not event_id and submission.get("id") is None:
        assert uuid.UUID(record.event_id).version == 4


def test_ce_time_is_each_events_own_time() -> None:
    submission = PLAIN_SUBMISSION.validate_python({"channel": "web", "scores": {"nps": 9}})
    berlin = NOW.astimezone(timezone(timedelta(hours=1)))
    assert berlin == NOW  # the same instant, written differently
    times = [NOW, NOW, berlin, datetime(2026, 11, 23, 12, 0, tzinfo=UTC), NOW.replace(minute=5)]
    for moment in times:
        record = accept(submission, source="/s", received_at=moment)
        written = moment.isoformat().replace("+00:00", "Z")  # RFC 3339, "Z" for UTC
        assert dict(record.headers)["ce_time"] == written.encode()
        assert orjson.loads(record.value)["occurred_at"] == written
        assert datetime.fromisoformat(written) == moment


def test_generated_ids_are_version_4_uuids() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:50]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == value


def test_feedback_uid_is_stable() -> None:
    # Stored by every sink: it must never change between releases.
    assert feedback_uid("/cxloop/keys/web", "e-1") == "4917845f379c99bafd50a78445bcb34f"
    assert feedback_uid("/cxloop/keys/web shop", "ä-2") == "4955108cc7d214b2ce90912a57dfbc5e"
    # The cached per-source state is copied, never advanced.
    assert feedback_uid("/cxloop/keys/web", "e-1") == "4917845f379c99bafd50a78445bcb34f"


def test_an_anonymous_event_is_keyed_by_its_uid() -> None:
    submission = PLAIN_SUBMISSION.validate_python({"channel": "web", "scores": {"nps": 9}})
    record = accept(submission, source="/s", received_at=NOW, event_id="e-9")
    assert record.key == feedback_uid("/s", "e-9").encode() == record.uid.encode()


def test_key_source_is_a_uri_reference() -> None:
    assert key_source("web shop/DE") == "/cxloop/keys/web%20shop%2FDE"


def test_memo_forgets_the_oldest() -> None:
    memo = UidMemo(2)
    for uid in ("a", "b", "c"):
        memo.add_all([uid])
    assert "a" not in memo
    assert "b" in memo
    assert "c" in memo
    assert len(memo) == 2
    memo.add_all(["d", "b", "e"])
    assert list(memo) == ["d", "e"]  # "b" was known: it kept its (oldest) place and went first
    nothing = UidMemo(0)
    nothing.add_all(["a"])
    assert "a" not in nothing


def test_token_bucket() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=2)
    assert limiter.check("k", now=0.0).allowed
    assert limiter.check("k", now=0.0).allowed
    refused = limiter.check("k", now=0.0)
    assert not refused.allowed
    assert refused.retry_after_s == 1
    assert limiter.check("k", now=0.1).allowed
    assert limiter.check("other", now=0.1).allowed


def test_the_size_limit_counts_the_event_as_written_not_as_posted() -> None:
    emoji = {"channel": "web", "comment": "\U0001f600" * 5000}
    escaped = json.dumps(emoji).encode()  # ensure_ascii: 12 bytes per emoji
    assert len(escaped) > MAX_EVENT_BYTES
    submission = PLAIN_SUBMISSION.validate_json(escaped)
    record = accept(submission, source="/s", received_at=NOW)  # 20 KB of UTF-8: accepted
    assert orjson.loads(record.value)["comment"] == emoji["comment"]

    wide = "\U0001f600"
    largest = {
        "channel": "web",
        "comment": wide * 5000,
        "touchpoint": wide * 200,
        "context": {"url": wide * 2000, "subject": wide * 1000, "order_id": wide * 500},
    }
    submission = PLAIN_SUBMISSION.validate_python(largest)
    with pytest.raises(Refused) as refused:
        accept(submission, source="/s", received_at=NOW)
    (error,) = refused.value.errors
    assert error["field"] == "(event)"
    assert error["type"] == "too_large"
    assert f"at most {MAX_EVENT_BYTES:,}" in error["message"]
    assert status_of(refused.value.errors) == 413


def test_accept_names_every_refused_field_of_a_cloudevent() -> None:
    submission = PLAIN_SUBMISSION.validate_python({"channel": "web", "scores": {"nps": 1}})
    with pytest.raises(Refused) as refused:
        accept(
            submission,
            source="/s\x00",
            received_at=NOW,
            event_id="e\x00",
            occurred_at=NOW + timedelta(days=1, seconds=1),
        )
    fields = {error["field"]: error["message"] for error in refused.value.errors}
    assert set(fields) == {"source", "id", "occurred_at"}
    assert "U+0000" in fields["source"]
    assert "more than 1 day after" in fields["occurred_at"]
    # A day ahead is still accepted: clocks drift and time zones get mislabelled.
    accept(submission, source="/s", received_at=NOW, occurred_at=NOW + timedelta(days=1))


@pytest.mark.parametrize(
    ("document", "field", "kind", "wording"),
    [
        (b'{"channel":"web","customer":5,"scores":{"nps":1}}', "customer", "model_type", "object"),
        (b'{"channel":"web","comment":"a\\u0000"}', "comment", "value_error", "must not contain"),
        (
            b'{"channel":"web","comment":"' + b"x" * 5001 + b'"}',
            "comment",
            "too_large",
            "too large: 5,001 characters",
        ),
        (
            b'{"channel":"web","scores":{"nps":1},"occurred_at":"9999-12-31T23:59:59-12:00"}',
            "occurred_at",
            "less_than",
            "between 1970 and 2099",
        ),
    ],
)
def test_field_errors_speak_the_apis_language(
    document: bytes, field: str, kind: str, wording: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        PLAIN_SUBMISSION.validate_json(document)
    (error,) = field_errors(caught.value)
    assert error["field"] == field
    assert error["type"] == kind
    assert wording in error["message"]
    assert "Value error" not in error["message"]
    assert "FeedbackSubmission" not in error["message"]
    assert "Customer" not in error["message"]


def test_batch_items_name_the_item_not_the_body() -> None:
    errors = validate_item(5)
    assert errors == [
        {"field": "(event)", "message": "Input should be an object", "type": "model_type"}
    ]


@pytest.mark.parametrize("minutes", [-(24 * 60 - 1), -14 * 60, -60, 0, 60, 14 * 60, 24 * 60 - 1])
@pytest.mark.parametrize("received_minute", [0, 59, 23 * 60 + 59])
def test_a_day_ahead_is_the_limit_in_every_time_zone(minutes: int, received_minute: int) -> None:
    received_at = datetime(2026, 11, 23, tzinfo=UTC) + timedelta(minutes=received_minute)
    zone = timezone(timedelta(minutes=minutes))
    for late, refused in ((timedelta(0), False), (timedelta(microseconds=1), True)):
        moment = (received_at + MAX_AHEAD + late).astimezone(zone)
        for submission in (
            PLAIN_SUBMISSION.validate_json(
                orjson.dumps({"channel": "web", "scores": {"nps": 1}, "occurred_at": moment})
            ),
            # Contact-centre times keep their zone object (here a fixed one).
            PLAIN_SUBMISSION.validate_python(
                {"channel": "web", "scores": {"nps": 1}, "occurred_at": moment}
            ),
        ):
            if refused:
                with pytest.raises(Refused):
                    accept(submission, source="/s", received_at=received_at)
            else:
                accept(submission, source="/s", received_at=received_at)


def test_a_day_ahead_across_a_daylight_saving_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    received_at = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # 23:30 CET, before the change
    for late, refused in ((timedelta(0), False), (timedelta(seconds=1), True)):
        moment = (received_at + MAX_AHEAD + late).astimezone(berlin)  # CEST by then
        submission = PLAIN_SUBMISSION.validate_python(
            {"channel": "web", "scores": {"nps": 1}, "occurred_at": moment}
        )
        if refused:
            with pytest.raises(Refused):
                accept(submission, source="/s", received_at=received_at)
        else:
            accept(submission, source="/s", received_at=received_at)

"""The pure intake functions: the accepted event's Kafka record, ids, keys and limits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cxloop_collector.intake import accept, key_source, new_id
from cxloop_collector.memo import UidMemo
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
_OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS
)
_SUBMISSIONS = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(CHANNELS),
        "scores": st.fixed_dictionaries({"nps": st.integers(0, 10)}),
    },
    optional={
        "id": _TEXT,
        "occurred_at": _TIMES.map(datetime.isoformat),
        "customer": st.fixed_dictionaries(
            {"id": _TEXT.filter(str.strip)}, optional={"segment": _TEXT, "region": _TEXT}
        ),
        "comment": _TEXT,
        "language": st.sampled_from(("de", "en-GB")),
        "touchpoint": _TEXT,
        "context": st.fixed_dictionaries({}, optional={"url": _TEXT, "subject": _TEXT}),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    fields=_SUBMISSIONS,
    source=_TEXT,
    received_at=_TIMES,
    event_id=st.none() | st.just("") | _TEXT,
    occurred_at=st.none() | _TIMES,
)
def test_accept_writes_the_event_for_any_submission(
    fields: dict[str, Any],
    source: str,
    received_at: datetime,
    event_id: str | None,
    occurred_at: datetime | None,
) -> None:
    submission = PLAIN_SUBMISSION.validate_json(orjson.dumps(fields))
    record = accept(
        submission,
        source=source,
        received_at=received_at,
        event_id=event_id,
        occurred_at=occurred_at,
    )
    event = received(
        submission,
        source=source,
        received_at=received_at,
        event_id=event_id,
        occurred_at=occurred_at,
        generated_id=record.event_id,
    )
    assert_record_of(record, event)
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

"""The pure intake functions: building the accepted event and its Kafka record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from cxloop_collector.intake import key_source, new_id, receive, to_record
from cxloop_collector.memo import UidMemo
from cxloop_collector.ratelimit import RateLimiter
from cxschema import FeedbackReceived, FeedbackSubmission, encode, feedback_uid

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_receive_equals_a_validated_event() -> None:
    submission = FeedbackSubmission.model_validate_json(
        b'{"channel":"web","customer":{"id":"crm-1","region":"DE-BY"},"scores":{"nps":3},'
        b'"comment":" zu sp\xc3\xa4t ","context":{"url":"https://shop.example"}}'
    )
    lean = receive(submission, source="/cxloop/keys/web", received_at=NOW, event_id="e-1")
    full = FeedbackReceived.model_validate(
        {
            **submission.model_dump(),
            "id": "e-1",
            "occurred_at": NOW,
            "source": "/cxloop/keys/web",
            "received_at": NOW,
        }
    )
    assert lean == full
    assert encode(lean) == encode(full)
    assert lean.model_dump() == full.model_dump()
    record = to_record(lean)
    assert record.uid == feedback_uid("/cxloop/keys/web", "e-1")
    assert record.key == b"crm-1"
    assert FeedbackReceived.model_validate_json(record.value) == full


def test_ce_time_is_each_events_own_time() -> None:
    submission = FeedbackSubmission.model_validate({"channel": "web", "scores": {"nps": 9}})
    berlin = NOW.astimezone(timezone(timedelta(hours=1)))
    assert berlin == NOW  # the same instant, written differently
    times = [NOW, NOW, berlin, datetime(2026, 11, 23, 12, 0, tzinfo=UTC), NOW.replace(minute=5)]
    for moment in times:
        record = to_record(receive(submission, source="/s", received_at=moment))
        assert dict(record.headers)["ce_time"] == moment.isoformat().encode()


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
    submission = FeedbackSubmission.model_validate({"channel": "web", "scores": {"nps": 9}})
    record = to_record(receive(submission, source="/s", received_at=NOW, event_id="e-9"))
    assert record.key == feedback_uid("/s", "e-9").encode() == record.uid.encode()


def test_key_source_is_a_uri_reference() -> None:
    assert key_source("web shop/DE") == "/cxloop/keys/web%20shop%2FDE"


def test_memo_forgets_the_oldest() -> None:
    memo = UidMemo(2)
    for uid in ("a", "b", "c"):
        memo.add(uid)
    assert "a" not in memo
    assert "b" in memo
    assert "c" in memo
    assert len(memo) == 2


def test_token_bucket() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=2)
    assert limiter.check("k", now=0.0).allowed
    assert limiter.check("k", now=0.0).allowed
    refused = limiter.check("k", now=0.0)
    assert not refused.allowed
    assert refused.retry_after_s == 1
    assert limiter.check("k", now=0.1).allowed
    assert limiter.check("other", now=0.1).allowed

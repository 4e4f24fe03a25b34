"""The event models refuse what no consumer could store or count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cxschema import PLAIN_SUBMISSION, FeedbackReceived, FeedbackSubmission, decode_received
from cxschema.events import EARLIEST, LATEST, MAX_AHEAD

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _received(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "e-1",
        "source": "/s",
        "channel": "web",
        "occurred_at": NOW.isoformat(),
        "received_at": NOW.isoformat(),
        "customer": {"id": "crm-1", "segment": "premium", "region": "DE-BY"},
        "scores": {"nps": 2},
        "comment": "zu spät",
        "context": {"url": "https://shop.example/", "subject": "Bestellung"},
    }
    event.update(changes)
    return event


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"comment": "kaputt\x00 geliefert"}, "comment"),
        ({"customer": {"id": "crm\x001"}}, "customer.id"),
        ({"customer": {"id": "c", "segment": "prem\x00ium"}}, "customer.segment"),
        ({"context": {"url": "https://x/\x00"}}, "context.url"),
        ({"context": {"subject": "\x00"}}, "context.subject"),
        ({"id": "e\x00"}, "id"),
        ({"touchpoint": "online\x00"}, "touchpoint"),
        ({"language": "de\x00"}, "language"),
        ({"source": "/s\x00"}, "source"),
    ],
)
def test_nul_is_refused_in_every_string(changes: dict[str, Any], field: str) -> None:
    # PostgreSQL stores no U+0000 in text or jsonb: one such event stopped the closed loop.
    value = orjson.dumps(_received(**changes))
    with pytest.raises(ValidationError) as caught:
        decode_received(value)
    [error] = caught.value.errors()
    assert ".".join(str(step) for step in error["loc"]) == field
    assert "must not contain the NUL character (U+0000)" in error["msg"]
    if field != "source":  # the submission has no source; the collector sets it
        submission = {
            k: v for k, v in _received(**changes).items() if k not in ("source", "received_at")
        }
        with pytest.raises(ValidationError):
            PLAIN_SUBMISSION.validate_json(orjson.dumps(submission))
        with pytest.raises(ValidationError):
            FeedbackSubmission.model_validate(submission)


def test_other_control_characters_and_text_pass() -> None:
    event = decode_received(orjson.dumps(_received(comment="Zeile 1\nZeile 2\t\x01 ✓ \\u0000")))
    assert event.comment == "Zeile 1\nZeile 2\t\x01 ✓ \\u0000"


@pytest.mark.parametrize(
    ("occurred_at", "ok"),
    [
        (EARLIEST, True),
        (EARLIEST - timedelta(microseconds=1), False),
        (datetime(1, 1, 1, 1, tzinfo=UTC), False),
        (LATEST - timedelta(microseconds=1), True),
        (LATEST, False),
        (datetime(9999, 12, 31, 23, tzinfo=UTC), False),
    ],
)
def test_times_lie_between_1970_and_2099(occurred_at: datetime, ok: bool) -> None:
    submission = {"channel": "web", "scores": {"nps": 1}, "occurred_at": occurred_at.isoformat()}
    for validate in (PLAIN_SUBMISSION.validate_json, FeedbackSubmission.model_validate_json):
        if ok:
            validate(orjson.dumps(submission))
        else:
            with pytest.raises(ValidationError, match="occurred_at"):
                validate(orjson.dumps(submission))


def test_the_far_ends_of_the_calendar_are_refused_with_any_offset() -> None:
    # Near year 1 or 9999, converting to UTC or the reporting zone overflows.
    late = "9999-12-31T23:00:00-05:00"
    with pytest.raises(ValidationError, match="occurred_at"):
        FeedbackSubmission.model_validate({"channel": "web", "comment": "x", "occurred_at": late})


@pytest.mark.parametrize(
    ("ahead", "ok"),
    [
        (timedelta(0), True),
        (-timedelta(days=400), True),  # old feedback, imported late
        (MAX_AHEAD, True),
        (MAX_AHEAD + timedelta(seconds=1), False),
        (timedelta(days=365), False),
    ],
)
def test_occurred_at_may_not_lie_far_after_received_at(ahead: timedelta, ok: bool) -> None:
    event = _received(occurred_at=(NOW + ahead).isoformat())
    if ok:
        assert FeedbackReceived.model_validate(event).occurred_at == NOW + ahead
    else:
        with pytest.raises(ValidationError, match="lies more than 1 day after received_at"):
            FeedbackReceived.model_validate(event)


def test_segment_and_region_are_trimmed_and_blank_is_none() -> None:
    customer = {"id": "crm-1", "segment": "  premium ", "region": "\tDE-BY \n"}
    event = FeedbackReceived.model_validate(_received(customer=customer))
    assert event.customer is not None
    assert (event.customer.segment, event.customer.region) == ("premium", "DE-BY")
    submission = {"channel": "web", "scores": {"nps": 2}, "customer": customer}
    plain = PLAIN_SUBMISSION.validate_python(submission)
    assert plain["customer"]["segment"] == "premium"
    assert plain["customer"]["region"] == "DE-BY"
    blank = FeedbackReceived.model_validate(_received(customer={"id": "c", "region": "   "}))
    assert blank.customer is not None
    assert blank.customer.region is None
    # Case is kept: a region code and a segment name are compared as written.
    cased = FeedbackReceived.model_validate(_received(customer={"id": "c", "segment": "Premium"}))
    assert cased.customer is not None
    assert cased.customer.segment == "Premium"

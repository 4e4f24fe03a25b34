"""`cxschema.plain`: the dict validator derived from `FeedbackSubmission` accepts and refuses
exactly what the model does, and its JSON is the model's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, computed_field, model_validator
from pydantic_core import SchemaValidator

from cxschema import CHANNELS, PLAIN_SUBMISSION, FeedbackSubmission, PlainModel, encode
from tests.collector.helpers import assert_within

_RAW = SchemaValidator(PLAIN_SUBMISSION.schema)
"""The derived schema alone, without `PlainModel`'s fall-back to the model."""

_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
_TEXT = st.sampled_from(("x", "  x ", "Lieferung zu spät")) | st.text(min_size=1, max_size=6)
_BAD_TEXT = st.sampled_from(("", " ", "a" * 5001)) | _ANY
_TIME = st.sampled_from(("2026-11-23T10:15:00+01:00", "2026-11-23T10:15:00.123456Z"))
_BAD_TIME = st.sampled_from(("2026-11-23T10:15:00", "2026-11-23", "yesterday")) | _ANY
_SCORE = st.integers(0, 5) | st.none()
_BAD_SCORE = st.sampled_from((-1, 8, 11, 3.0, "7", True)) | _ANY

_VALID = st.fixed_dictionaries(
    {"channel": st.sampled_from(CHANNELS)},
    optional={
        "id": _TEXT,
        "occurred_at": _TIME | st.none(),
        "customer": st.fixed_dictionaries(
            {"id": _TEXT}, optional={"segment": _TEXT | st.none(), "region": _TEXT}
        )
        | st.none(),
        "scores": st.fixed_dictionaries(
            {}, optional={"nps": _SCORE, "csat": _SCORE, "ces": _SCORE}
        ),
        "comment": _TEXT | st.none(),
        "language": st.sampled_from(("de", "en-GB")) | st.none(),
        "touchpoint": _TEXT | st.none(),
        "context": st.fixed_dictionaries(
            {}, optional={"url": _TEXT, "subject": _TEXT, "survey": _TEXT}
        ),
    },
)
"""Mostly valid submissions (refused only for having neither score nor comment, or for a
blank customer id)."""

_BREAKS: dict[str, st.SearchStrategy[Any]] = {
    "id": _BAD_TEXT,
    "occurred_at": _BAD_TIME,
    "channel": st.sampled_from(("fax", None)) | _ANY,
    "customer": st.fixed_dictionaries({}, optional={"id": _BAD_TEXT, "segment": _BAD_TEXT})
    | st.fixed_dictionaries({"id": _TEXT, "tier": _TEXT})
    | _ANY,
    "scores": st.fixed_dictionaries({"nps": _BAD_SCORE})
    | st.fixed_dictionaries({"csat": _BAD_SCORE})
    | st.fixed_dictionaries({"ces": _BAD_SCORE})
    | st.fixed_dictionaries({"stars": _SCORE})
    | _ANY,
    "comment": _BAD_TEXT,
    "language": st.sampled_from(("d", "x" * 17)) | _ANY,
    "touchpoint": _BAD_TEXT,
    "context": st.fixed_dictionaries({"url": _BAD_TEXT})
    | st.fixed_dictionaries({"page": _TEXT})
    | _ANY,
    "extra": _ANY,
}


def _broken(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`document` with one member replaced by a doubtful value, or left out."""
    name = st.sampled_from(sorted(_BREAKS))
    replaced = name.flatmap(lambda key: _BREAKS[key].map(lambda value: {**document, key: value}))
    removed = name.map(lambda key: {k: v for k, v in document.items() if k != key})
    return replaced | removed


_DOCUMENTS = _VALID | _VALID.flatmap(_broken)


def _outcome(validate: Callable[[Any], Any], data: Any) -> tuple[Any, list[Any] | None]:
    """What `validate` made of `data`, or its errors (without the context objects)."""
    try:
        return validate(data), None
    except ValidationError as error:
        return None, error.errors(include_url=False, include_context=False)


def _check(document: Any, *, as_json: bool) -> None:
    if as_json:
        data: Any = orjson.dumps(document)
        validators = (
            FeedbackSubmission.model_validate_json,
            _RAW.validate_json,
            PLAIN_SUBMISSION.validate_json,
        )
    else:
        data = document
        validators = (
            FeedbackSubmission.model_validate,
            _RAW.validate_python,
            PLAIN_SUBMISSION.validate_python,
        )
    (model, model_errors), (plain, plain_errors), (read, read_errors) = (
        _outcome(validate, data) for validate in validators
    )
    assert (plain_errors is None) == (model_errors is None)
    assert read_errors == model_errors  # a refusal is reported with the model's own error
    if model_errors is None:
        assert read == plain
        written = PLAIN_SUBMISSION.to_json(plain)
        assert FeedbackSubmission.model_validate_json(written) == model
        assert_within(orjson.loads(written), orjson.loads(encode(model)))


@settings(max_examples=600, deadline=None)
@given(document=_DOCUMENTS)
def test_the_plain_validator_agrees_with_the_model(document: dict[str, Any]) -> None:
    _check(document, as_json=True)
    _check(document, as_json=False)


@pytest.mark.parametrize(
    "document",
    [
        {"channel": "web", "scores": {"nps": 9}},
        {"channel": "web", "comment": " gut "},
        {"channel": "web", "comment": "   "},  # blank comment, no score: refused
        {"channel": "web", "scores": {}, "comment": None},
        {"channel": "web", "scores": {"nps": None}, "customer": None, "comment": "x"},
        {"channel": "app", "scores": {"csat": 6}},
        {"channel": "app", "scores": {"nps": 9}, "context": {"page": "/"}},
        {"channel": "web", "scores": {"nps": 9}, "customer": {"id": "  crm-1 "}},
        {"channel": "web", "scores": {"nps": 9}, "occurred_at": "2026-11-23T10:15:00"},
    ],
)
def test_the_plain_validator_agrees_on_edge_cases(document: dict[str, Any]) -> None:
    _check(document, as_json=True)
    _check(document, as_json=False)


def test_defaults_are_left_out_and_values_kept() -> None:
    plain = PLAIN_SUBMISSION.validate_json(
        b'{"channel":"web","customer":{"id":" crm-1 "},"scores":{"nps":3},"comment":" ok "}'
    )
    assert plain == {
        "channel": "web",
        "customer": {"id": "crm-1"},
        "scores": {"nps": 3},
        "comment": "ok",
    }
    assert PLAIN_SUBMISSION.to_json(plain, exclude={"comment"}) == (
        b'{"channel":"web","customer":{"id":"crm-1"},"scores":{"nps":3}}'
    )


def test_a_model_validator_without_a_rule_is_refused() -> None:
    class Checked(BaseModel):
        value: int

        @model_validator(mode="after")
        def _positive(self) -> Self:
            return self

    with pytest.raises(TypeError, match="_positive"):
        PlainModel(Checked)
    assert PlainModel(Checked, rules={"_positive": lambda plain: None}).validate_python(
        {"value": 1}
    ) == {"value": 1}


def test_constructs_it_does_not_know_are_refused() -> None:
    class Computed(BaseModel):
        value: int

        @computed_field  # type: ignore[prop-decorator]
        @property
        def double(self) -> int:
            return 2 * self.value

    class Mapped(BaseModel):
        values: dict[str, int]

    with pytest.raises(TypeError, match="computed"):
        PlainModel(Computed)
    with pytest.raises(TypeError, match="dict"):
        PlainModel(Mapped)

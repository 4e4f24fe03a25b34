"""The feedback event models of SPEC.md.

Three stages of one event, each a frozen model that forbids unknown fields:

- `FeedbackSubmission`: what a channel posts (the native event); `id` and `occurred_at` optional.
- `FeedbackReceived`: what the collector writes to `cx.feedback.raw.v1`: the submission with its
  id, source and times fixed.
- `FeedbackEnriched`: what the enricher writes to `cx.feedback.enriched.v1`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from cxschema.plain import Plain, PlainModel

MAX_COMMENT_CHARS: Final = 5000
MAX_ID_CHARS: Final = 100

Channel = Literal["web", "app", "email", "contact_centre"]
CHANNELS: Final[tuple[str, ...]] = get_args(Channel)
SentimentLabel = Literal["negative", "neutral", "positive", "mixed"]

ShortText = Annotated[str, StringConstraints(max_length=500)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def _strip_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Customer(_Model):
    """Who gave the feedback. `id` is the CRM reference and the Kafka record key."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    segment: Label | None = None
    region: Label | None = None


class Scores(_Model):
    """Survey scores; each optional, each on its own scale."""

    nps: Annotated[int, Field(ge=0, le=10, strict=True)] | None = None
    csat: Annotated[int, Field(ge=1, le=5, strict=True)] | None = None
    ces: Annotated[int, Field(ge=1, le=7, strict=True)] | None = None

    def is_empty(self) -> bool:
        """True when no score is set."""
        return self.nps is None and self.csat is None and self.ces is None


class FeedbackContext(_Model):
    """Where the feedback was given; all optional, used by touchpoint rules and routing."""

    url: Annotated[str, StringConstraints(max_length=2000)] = ""
    app_screen: ShortText = ""
    ivr_queue: ShortText = ""
    order_id: ShortText = ""
    agent_id: ShortText = ""
    call_id: ShortText = ""
    subject: Annotated[str, StringConstraints(max_length=1000)] = ""
    survey: ShortText = ""


Comment = Annotated[
    str | None,
    Field(max_length=MAX_COMMENT_CHARS),
    AfterValidator(_strip_or_none),
]


class FeedbackSubmission(_Model):
    """The native feedback event a channel posts (SPEC.md)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)] | None = None
    occurred_at: AwareDatetime | None = None
    channel: Channel
    customer: Customer | None = None
    scores: Scores = Field(default_factory=Scores)
    comment: Comment = None
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)] | None = None
    touchpoint: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    context: FeedbackContext = Field(default_factory=FeedbackContext)

    @model_validator(mode="after")
    def _needs_score_or_comment(self) -> Self:
        _require_score_or_comment({"scores": vars(self.scores), "comment": self.comment})
        return self


_SCORE_NAMES: Final = tuple(Scores.model_fields)


def _require_score_or_comment(plain: Plain) -> None:
    """The rule of `FeedbackSubmission` on its dict form (an absent member counts as None),
    which the model's validator and `PLAIN_SUBMISSION` share."""
    scores = plain.get("scores") or {}
    if not plain.get("comment") and all(scores.get(name) is None for name in _SCORE_NAMES):
        raise ValueError("an event needs at least one score (nps, csat, ces) or a comment")


PLAIN_SUBMISSION: Final = PlainModel(
    FeedbackSubmission, rules={"_needs_score_or_comment": _require_score_or_comment}
)
"""`FeedbackSubmission` validated into a plain dict: the collector's hot path (`cxschema.plain`)."""


class FeedbackReceived(FeedbackSubmission):
    """A submission the collector accepted; the value of `cx.feedback.raw.v1`."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
    occurred_at: AwareDatetime
    source: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    received_at: AwareDatetime


class Sentiment(_Model):
    """Sentiment of the comment: a label and a score in [-1, 1] (0 when there is no comment)."""

    label: SentimentLabel
    score: Annotated[float, Field(ge=-1.0, le=1.0)]


class FeedbackEnriched(FeedbackReceived):
    """An enriched event; the value of `cx.feedback.enriched.v1`.

    `comment` holds the text with personal data replaced by placeholders; `redactions` counts
    them by kind.
    """

    touchpoint: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    journey_stage: Label
    owner_team: Label | None = None
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)]
    sentiment: Sentiment
    redactions: dict[str, int] = Field(default_factory=dict)
    enriched_at: datetime | None = None

"""The feedback event models of SPEC.md.

Three stages of one event, each a frozen model that forbids unknown fields:

- `FeedbackSubmission`: what a channel posts (the native event); `id` and `occurred_at` optional.
- `FeedbackReceived`: what the collector writes to `cx.feedback.raw.v1`: the submission with its
  id, source and times fixed.
- `FeedbackEnriched`: what the enricher writes to `cx.feedback.enriched.v1`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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

EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
MAX_AHEAD: Final = timedelta(days=1)
"""How far `occurred_at` may lie after `received_at`: client clocks drift and time zones get
mislabelled, but feedback from the future would stay outside every KPI window until then."""

Channel = Literal["web", "app", "email", "contact_centre"]
CHANNELS: Final[tuple[str, ...]] = get_args(Channel)
SentimentLabel = Literal["negative", "neutral", "positive", "mixed"]
JOURNEY_STAGES: Final = (
    "awareness",
    "consideration",
    "purchase",
    "delivery",
    "usage",
    "service",
    "loyalty",
    "exit",
    "unknown",
)
"""The customer-journey stages a touchpoint belongs to; `unknown` is meant for `unclassified`
only."""


def _without_nul(value: str) -> str:
    # PostgreSQL stores no U+0000 in text or jsonb, so an event holding one would stop every
    # consumer that writes it; and no feedback needs it. Refused where the event comes in.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


NoNul = AfterValidator(_without_nul)
"""On every string of an event (and of the APIs' request bodies): U+0000 is refused."""

ShortText = Annotated[str, StringConstraints(max_length=500), NoNul]
Label = Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS), NoNul]
LanguageCode = Annotated[str, StringConstraints(min_length=2, max_length=16), NoNul]
TouchpointId = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Moment = Annotated[AwareDatetime, Field(ge=EARLIEST, lt=LATEST)]
"""A time of an event: with its offset, from 1970 to 2099 (nothing near the ends of the
calendar, where converting between time zones overflows)."""


def _strip_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = _without_nul(value).strip()
    return stripped or None


CustomerLabel = Annotated[str | None, Field(max_length=100), AfterValidator(_strip_or_none)]
"""A customer's segment or region: white space trimmed, blank is None, U+0000 refused."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Customer(_Model):
    """Who gave the feedback. `id` is the CRM reference and the Kafka record key."""

    id: Annotated[
        str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), NoNul
    ]
    # Trimmed, and blank means none: " DE-BY " and "DE-BY" are one region in every KPI.
    # Case is kept (and compared): "premium" and "Premium" are two segments.
    segment: CustomerLabel = None
    region: CustomerLabel = None


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

    url: Annotated[str, StringConstraints(max_length=2000), NoNul] = ""
    app_screen: ShortText = ""
    ivr_queue: ShortText = ""
    order_id: ShortText = ""
    agent_id: ShortText = ""
    call_id: ShortText = ""
    subject: Annotated[str, StringConstraints(max_length=1000), NoNul] = ""
    survey: ShortText = ""


Comment = Annotated[
    str | None,
    Field(max_length=MAX_COMMENT_CHARS),
    AfterValidator(_strip_or_none),
]


class FeedbackSubmission(_Model):
    """The native feedback event a channel posts (SPEC.md)."""

    id: EventId | None = None
    occurred_at: Moment | None = None
    channel: Channel
    customer: Customer | None = None
    scores: Scores = Field(default_factory=Scores)
    comment: Comment = None
    language: LanguageCode | None = None
    touchpoint: TouchpointId | None = None
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

    id: EventId
    occurred_at: Moment
    source: Annotated[str, StringConstraints(min_length=1, max_length=500), NoNul]
    received_at: Moment

    @model_validator(mode="after")
    def _not_from_the_future(self) -> Self:
        if self.occurred_at - self.received_at > MAX_AHEAD:
            raise ValueError(
                f"occurred_at ({self.occurred_at.isoformat()}) lies more than "
                f"{MAX_AHEAD.days} day after received_at ({self.received_at.isoformat()})"
            )
        return self


class Sentiment(_Model):
    """Sentiment of the comment: a label and a score in [-1, 1] (0 when there is no comment)."""

    label: SentimentLabel
    score: Annotated[float, Field(ge=-1.0, le=1.0)]


class FeedbackEnriched(FeedbackReceived):
    """An enriched event; the value of `cx.feedback.enriched.v1`.

    `comment` holds the text with personal data replaced by placeholders; `redactions` counts
    them by kind.
    """

    touchpoint: TouchpointId
    journey_stage: Label
    owner_team: Label | None = None
    language: LanguageCode
    sentiment: Sentiment
    redactions: dict[str, int] = Field(default_factory=dict)
    enriched_at: datetime | None = None

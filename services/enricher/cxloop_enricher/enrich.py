"""Enrichment of one event: a pure function of the event and the configured taggers.

Order: redact personal data first, so that nothing after it (touchpoint rules, language and
sentiment, the record that leaves the service) sees the raw text; then tag the touchpoint,
detect the language and score the sentiment of the redacted comment.

An event without a comment gets `neutral` with score 0: its scores (NPS, CSAT, CES) are
reported as what they are, not re-labelled as a sentiment no text expressed. Readers that
average sentiment should count only events with a comment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from cxloop_enricher.pii import Redactor, add_counts
from cxloop_enricher.touchpoints import Tagging, TouchpointTagger
from cxschema import (
    FeedbackContext,
    FeedbackEnriched,
    FeedbackReceived,
    FeedbackSubmission,
    Sentiment,
    SentimentLabel,
)
from cxschema.events import MAX_COMMENT_CHARS

UNDETERMINED: Final = "und"
NO_COMMENT_SENTIMENT: Final = Sentiment(label="neutral", score=0.0)
_MAX_SUBJECT_CHARS: Final = 1000
_MAX_URL_CHARS: Final = 2000


class SentimentScore(Protocol):
    """What a sentiment analyzer returns."""

    @property
    def label(self) -> SentimentLabel:
        """negative, neutral, positive or mixed."""
        ...

    @property
    def score(self) -> float:
        """In [-1, 1]."""
        ...


class SentimentAnalyzer(Protocol):
    """A sentiment tagger (`cxloop_enricher.sentiment.SentimentAnalyzer`)."""

    def analyze(self, text: str, language: str) -> SentimentScore:
        """Score one text in `language`."""
        ...

    @property
    def batches(self) -> bool:
        """True if `prepare` makes scoring many texts cheaper."""
        ...

    def prepare(self, texts: Sequence[str]) -> None:
        """Do ahead, for many texts at once, work that `analyze` would do one by one."""
        ...


LanguageDetector = Callable[[str | None, str | None], str]


@dataclass(frozen=True, slots=True)
class Enriched:
    """An enriched event and how its touchpoint was decided."""

    event: FeedbackEnriched
    tagging: Tagging


class Enricher:
    """Turns a `FeedbackReceived` into a `FeedbackEnriched`."""

    def __init__(
        self,
        *,
        tagger: TouchpointTagger,
        redactor: Redactor,
        analyzer: SentimentAnalyzer,
        detect_language: LanguageDetector,
    ) -> None:
        self.tagger = tagger
        self.redactor = redactor
        self.analyzer = analyzer
        self.detect_language = detect_language

    def prepare(self, events: Sequence[FeedbackReceived]) -> None:
        """Let the analyzer score the (redacted) comments of `events` in one go, where that is
        cheaper (see `SentimentAnalyzer.prepare`); `enrich` answers the same either way."""
        if not self.analyzer.batches:
            return
        self.analyzer.prepare(
            # The comment exactly as `enrich` will score it.
            [redact_event(self.redactor, event)[0] or "" for event in events if event.comment]
        )

    def enrich(self, event: FeedbackReceived, *, now: datetime) -> Enriched:
        """The enriched event; raises `pydantic.ValidationError` only on a bug or bad config."""
        comment, context, redactions, readable, readable_context = redact_event(
            self.redactor, event
        )
        tagging = self.tagger.tag(event, comment=readable, context=readable_context)
        language = self.detect_language(readable, event.language)
        if comment:
            result = self.analyzer.analyze(comment, language)
            score = min(1.0, max(-1.0, float(result.score)))
            sentiment = Sentiment(label=result.label, score=score)
        else:
            sentiment = NO_COMMENT_SENTIMENT
        if not 2 <= len(language) <= 16:
            language = UNDETERMINED
        values: dict[str, Any] = event.__dict__.copy()
        values.update(
            comment=comment,
            context=context,
            touchpoint=tagging.touchpoint.id,
            journey_stage=tagging.touchpoint.stage,
            owner_team=tagging.touchpoint.team,
            language=language,
            sentiment=sentiment,
            redactions=redactions,
            enriched_at=now,
        )
        return Enriched(FeedbackEnriched.model_validate(values), tagging)


RedactedEvent = tuple[str | None, FeedbackContext, dict[str, int], str | None, FeedbackContext]
"""An event's comment and context as they leave the enricher (personal data replaced, cut to
the limits), the replacements by kind, and the comment and context as touchpoint rules and
language detection read them: with the placeholders blanked out (the same objects when nothing
was replaced). A plain tuple: this runs for every event."""


def redact_event(redactor: Redactor, event: FeedbackSubmission) -> RedactedEvent:
    """Redact an event's comment, subject and URL (the enricher's first step, and what
    `cxloop touchpoints test` matches rules against)."""
    redactions: dict[str, int] = {}
    comment = readable_comment = event.comment
    if comment:
        redacted = redactor.redact(comment)
        comment = readable_comment = redacted.text[:MAX_COMMENT_CHARS]
        if redacted.counts:
            add_counts(redactions, redacted.counts)
            readable_comment = redactor.unmarked(comment)
    context = readable_context = event.context
    changes: dict[str, str] = {}
    if context.subject:
        redacted = redactor.redact(context.subject)
        if redacted.counts:
            changes["subject"] = redacted.text[:_MAX_SUBJECT_CHARS]
            add_counts(redactions, redacted.counts)
    if "@" in context.url or "?" in context.url:
        redacted = redactor.redact_url(context.url)
        if redacted.counts:
            changes["url"] = redacted.text[:_MAX_URL_CHARS]
            add_counts(redactions, redacted.counts)
    if changes:
        context = context.model_copy(update=changes)
        readable_context = context.model_copy(
            update={key: redactor.unmarked(value) for key, value in changes.items()}
        )
    return comment, context, redactions, readable_comment, readable_context

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

from cxloop_enricher.pii import Redactor
from cxloop_enricher.touchpoints import Tagging, TouchpointTagger
from cxschema import FeedbackEnriched, FeedbackReceived, Sentiment, SentimentLabel
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
            [self._redact_comment(event.comment)[0] for event in events if event.comment]
        )

    def _redact_comment(self, comment: str) -> tuple[str, dict[str, int]]:
        """The comment as it leaves the enricher (personal data replaced, cut to the limit) and
        the redactions by kind; `prepare` must see exactly the text `enrich` scores."""
        redacted = self.redactor.redact(comment)
        return redacted.text[:MAX_COMMENT_CHARS], redacted.counts

    def enrich(self, event: FeedbackReceived, *, now: datetime) -> Enriched:
        """The enriched event; raises `pydantic.ValidationError` only on a bug or bad config."""
        redactions: dict[str, int] = {}
        comment = event.comment
        if comment:
            comment, counts = self._redact_comment(comment)
            _add(redactions, counts)
        context = event.context
        changes: dict[str, str] = {}
        if context.subject:
            redacted = self.redactor.redact(context.subject)
            if redacted.counts:
                changes["subject"] = redacted.text[:_MAX_SUBJECT_CHARS]
                _add(redactions, redacted.counts)
        if "@" in context.url:
            redacted = self.redactor.redact_emails(context.url)
            if redacted.counts:
                changes["url"] = redacted.text[:_MAX_URL_CHARS]
                _add(redactions, redacted.counts)
        if changes:
            context = context.model_copy(update=changes)

        tagging = self.tagger.tag(event, comment=comment, context=context)
        language = self.detect_language(comment, event.language)
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


def _add(total: dict[str, int], counts: dict[str, int]) -> None:
    for kind, n in counts.items():
        total[kind] = total.get(kind, 0) + n

"""Which feedback opens a case, why, and how severe it is. Pure functions of the event."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from cxloop_closed_loop.config import Detection, Severity, SeverityPolicy, SeverityRule
from cxschema import FeedbackEnriched

SEVERITY_RANK: dict[str, int] = {"low": 0, "normal": 1, "high": 2}


@dataclass(frozen=True)
class Finding:
    """Why an event calls for a case, and the severity it derives."""

    reasons: tuple[str, ...]
    keywords: tuple[str, ...]
    severity: Severity


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@functools.lru_cache(maxsize=64)
def _keyword_patterns(keywords: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((k, re.compile(r"(?<!\w)" + re.escape(_fold(k)))) for k in keywords)


def find_keywords(comment: str | None, keywords: Sequence[str]) -> tuple[str, ...]:
    """The configured keywords the comment contains as words or word prefixes ("kündig...")."""
    if not comment or not keywords:
        return ()
    folded = _fold(comment)
    return tuple(k for k, pattern in _keyword_patterns(tuple(keywords)) if pattern.search(folded))


def _reasons(event: FeedbackEnriched, rules: Detection, keywords: tuple[str, ...]) -> list[str]:
    reasons = []
    scores = event.scores
    if scores.nps is not None and scores.nps <= rules.nps_max:
        reasons.append(f"nps={scores.nps}")
    if scores.csat is not None and scores.csat <= rules.csat_max:
        reasons.append(f"csat={scores.csat}")
    if scores.ces is not None and scores.ces <= rules.ces_max:
        reasons.append(f"ces={scores.ces}")
    if scores.is_empty() and event.comment and event.sentiment.score <= rules.sentiment_max:
        reasons.append(f"sentiment={event.sentiment.score:.2f}")
    reasons += [f"keyword={k}" for k in keywords]
    return reasons


def _rule_holds(rule: SeverityRule, event: FeedbackEnriched, keywords: tuple[str, ...]) -> bool:
    scores = event.scores
    checks: list[bool] = []
    if rule.nps_min is not None:
        checks.append(scores.nps is not None and scores.nps >= rule.nps_min)
    if rule.nps_max is not None:
        checks.append(scores.nps is not None and scores.nps <= rule.nps_max)
    if rule.csat_max is not None:
        checks.append(scores.csat is not None and scores.csat <= rule.csat_max)
    if rule.ces_max is not None:
        checks.append(scores.ces is not None and scores.ces <= rule.ces_max)
    if rule.sentiment_max is not None:
        checks.append(bool(event.comment) and event.sentiment.score <= rule.sentiment_max)
    if rule.segments is not None:
        segment = event.customer.segment if event.customer else None
        checks.append(segment in rule.segments)
    if rule.keyword is not None:
        checks.append(bool(keywords) == rule.keyword)
    return bool(checks) and all(checks)


def severity_of(
    event: FeedbackEnriched, policy: SeverityPolicy, keywords: tuple[str, ...]
) -> Severity:
    """The severity of the first rule whose conditions all hold, else the default."""
    for rule in policy.rules:
        if _rule_holds(rule, event, keywords):
            return rule.severity
    return policy.default


def detect(event: FeedbackEnriched, rules: Detection, policy: SeverityPolicy) -> Finding | None:
    """A finding when the event should open or update a case, else None."""
    keywords = find_keywords(event.comment, rules.keywords)
    reasons = _reasons(event, rules, keywords)
    if not reasons:
        return None
    return Finding(tuple(reasons), keywords, severity_of(event, policy, keywords))


def higher(current: str, new: str) -> str:
    """The higher of two severities: a case's severity only rises."""
    return new if SEVERITY_RANK[new] > SEVERITY_RANK[current] else current


def labels_of(event: FeedbackEnriched, severity: str) -> dict[str, str]:
    """The labels routing matchers see."""
    customer = event.customer
    return {
        "touchpoint": event.touchpoint,
        "journey_stage": event.journey_stage,
        "channel": event.channel,
        "region": (customer.region if customer else None) or "",
        "segment": (customer.segment if customer else None) or "",
        "language": event.language,
        "severity": severity,
        "owner_team": event.owner_team or "",
        "sentiment": event.sentiment.label,
    }

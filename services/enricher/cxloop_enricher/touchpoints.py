"""Touchpoint tagging: which taxonomy node an event is about, and why.

Precedence, highest first:

1. the event's `touchpoint` hint, when it names a taxonomy id or alias;
2. the taxonomy's rules in file order: the first rule whose conditions all hold wins;
3. `unclassified`.

Nothing is dropped: every event gets a touchpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from cxloop_enricher.taxonomy import UNCLASSIFIED, RuleSpec, Taxonomy, Touchpoint
from cxschema import FeedbackContext, FeedbackSubmission

_FOLD: Final = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})

Via = Literal["hint", "rule", "default"]


def fold(text: str) -> str:
    """Lower-case with German umlauts spelled out, so `Rückgabe` and `Rueckgabe` match alike."""
    return text.lower().translate(_FOLD)


def keyword_regex(keywords: Sequence[str]) -> re.Pattern[str]:
    """One pattern matching any keyword as whole words; `*` is any run of letters."""
    alternatives = []
    for keyword in keywords:
        pieces = [re.escape(piece) for piece in fold(keyword.strip()).split("*")]
        body = r"\w*".join(pieces)
        body = re.sub(r"(\\ )+", r"[\\s\\-]+", body)
        alternatives.append(body)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


@dataclass(frozen=True, slots=True)
class _Fields:
    """The parts of an event rules look at, normalised once per event."""

    channel: str
    url: str
    app_screen: str
    ivr_queue: str
    subject: str
    comment: str
    text: str


_Check = Callable[[_Fields], "str | None"]


def _regex_check(field: str, patterns: Sequence[str]) -> _Check:
    compiled = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)

    def check(fields: _Fields) -> str | None:
        value: str = getattr(fields, field)
        if not value:
            return None
        found = compiled.search(value)
        return f"{field} {value!r} matches {found.group(0)!r}" if found else None

    return check


def _keyword_check(field: str, keywords: Sequence[str]) -> _Check:
    compiled = keyword_regex(keywords)
    singles = [(k, keyword_regex([k])) for k in keywords]

    def check(fields: _Fields) -> str | None:
        value: str = getattr(fields, field)
        if not value:
            return None
        found = compiled.search(value)
        if found is None:
            return None
        keyword = next((k for k, rx in singles if rx.search(found.group(0))), "?")
        return f"{field} keyword {keyword!r} matches {found.group(0)!r}"

    return check


def _channel_check(channels: Sequence[str]) -> _Check:
    allowed = frozenset(channels)

    def check(fields: _Fields) -> str | None:
        return f"channel {fields.channel!r}" if fields.channel in allowed else None

    return check


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    index: int
    spec: RuleSpec
    checks: tuple[_Check, ...]

    def match(self, fields: _Fields) -> list[str] | None:
        reasons = []
        for check in self.checks:
            reason = check(fields)
            if reason is None:
                return None
            reasons.append(reason)
        return reasons


def _compile(index: int, rule: RuleSpec) -> _CompiledRule:
    checks: list[_Check] = []
    if rule.channel is not None:
        checks.append(_channel_check(rule.channel))
    for field in ("ivr_queue", "app_screen", "url"):
        patterns = getattr(rule, field)
        if patterns is not None:
            checks.append(_regex_check(field, patterns))
    for field in ("subject", "comment", "text"):
        keywords = getattr(rule, field)
        if keywords is not None:
            checks.append(_keyword_check(field, keywords))
    return _CompiledRule(index, rule, tuple(checks))


@dataclass(frozen=True, slots=True)
class Tagging:
    """The touchpoint an event gets and how it was decided."""

    touchpoint: Touchpoint
    via: Via
    rule: str | None
    reasons: tuple[str, ...]

    def explain(self) -> str:
        """One line saying which hint or rule decided."""
        if self.via == "hint":
            return f"the touchpoint hint names it ({'; '.join(self.reasons)})"
        if self.via == "rule":
            return f"rule {self.rule!r}: {'; '.join(self.reasons)}"
        return "no hint names a known touchpoint and no rule matched"


class TouchpointTagger:
    """Tags events with a taxonomy touchpoint (see the module docstring for the precedence)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._rules = tuple(_compile(i, rule) for i, rule in enumerate(taxonomy.rules))
        self._unclassified = taxonomy.touchpoints[UNCLASSIFIED]

    def tag(
        self,
        event: FeedbackSubmission,
        *,
        comment: str | None = None,
        context: FeedbackContext | None = None,
    ) -> Tagging:
        """Tag `event`; `comment` and `context` override its own (the enricher passes them
        redacted)."""
        hinted = self.taxonomy.resolve_hint(event.touchpoint)
        if hinted is not None:
            return Tagging(hinted, "hint", None, (f"hint {event.touchpoint!r}",))
        text = event.comment if comment is None else comment
        ctx = event.context if context is None else context
        subject = fold(ctx.subject)
        folded = fold(text) if text else ""
        fields = _Fields(
            channel=event.channel,
            url=ctx.url,
            app_screen=ctx.app_screen,
            ivr_queue=ctx.ivr_queue,
            subject=subject,
            comment=folded,
            text=f"{subject}\n{folded}" if subject and folded else subject or folded,
        )
        for rule in self._rules:
            reasons = rule.match(fields)
            if reasons is not None:
                found = self.taxonomy.touchpoints[rule.spec.touchpoint]
                return Tagging(found, "rule", rule.spec.name, tuple(reasons))
        reasons_default: tuple[str, ...] = ()
        if event.touchpoint:
            reasons_default = (f"hint {event.touchpoint!r} is not a known touchpoint",)
        return Tagging(self._unclassified, "default", None, reasons_default)

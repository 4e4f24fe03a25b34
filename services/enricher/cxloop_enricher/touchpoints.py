"""Touchpoint tagging: which taxonomy node an event is about, and why.

Precedence, highest first:

1. the event's `touchpoint` hint, when it names a taxonomy id or alias;
2. the taxonomy's rules in file order: the first rule whose conditions all hold wins;
3. `unclassified`.

Nothing is dropped: every event gets a touchpoint.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Final, Literal

from cxloop_enricher.taxonomy import UNCLASSIFIED, RuleSpec, Taxonomy, Touchpoint, fold
from cxschema import FeedbackContext, FeedbackSubmission

Via = Literal["hint", "rule", "default"]


def keyword_regex(keywords: Sequence[str]) -> re.Pattern[str]:
    """One pattern matching any keyword as whole words; `*` is any run of letters."""
    alternatives = []
    for keyword in keywords:
        pieces = [re.escape(piece) for piece in fold(keyword.strip()).split("*")]
        body = r"\w*".join(pieces)
        body = re.sub(r"(\\ )+", r"[\\s\\-]+", body)
        alternatives.append(body)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


_WORD: Final = re.compile(r"\w+")
_SIMPLE: Final = re.compile(r"^\*?\w+\*?$")


# _Words and _Fields are built for every event and never changed after: not frozen, because a
# frozen dataclass's __init__ costs about twice as much (1.8 against 0.75 µs for eight fields).
@dataclass(slots=True)
class _Words:
    """The words of one text field and which keyword prefixes and suffixes they carry."""

    words: frozenset[str]
    prefixes: frozenset[str]
    suffixes: frozenset[str]


EMPTY_WORDS: Final = _Words(frozenset(), frozenset(), frozenset())


@dataclass(slots=True)
class _Fields:
    """The parts of an event rules look at, normalised once per event."""

    channel: str
    url: str
    app_screen: str
    ivr_queue: str
    subject: str
    comment: str
    text: str
    words: dict[str, _Words]


_KEY: Final = 3


def _by_key(affixes: set[str], key: Callable[[str], str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for affix in affixes:
        if len(affix) >= _KEY:
            index.setdefault(key(affix), []).append(affix)
    return {k: tuple(v) for k, v in index.items()}


_Affixes = tuple[tuple[str, ...], tuple[str, ...]]
_NO_AFFIXES: Final[_Affixes] = ((), ())
_WORD_CACHE_SIZE: Final = 100_000


class _Vocabulary:
    """Every keyword prefix and suffix of the taxonomy, to find those in a text in one pass.

    Affixes are indexed by their first (prefixes) or last (suffixes) three letters, so a new
    word costs one dictionary look-up unless it may carry one; a word seen before costs one
    look-up in a bounded cache of the answers (comments repeat their vocabulary).
    """

    def __init__(self, prefixes: set[str], suffixes: set[str]) -> None:
        self._prefixes = _by_key(prefixes, lambda p: p[:_KEY])
        self._suffixes = _by_key(suffixes, lambda s: s[-_KEY:])
        self._short_prefixes = tuple(p for p in prefixes if len(p) < _KEY)
        self._short_suffixes = tuple(s for s in suffixes if len(s) < _KEY)
        self._known: dict[str, _Affixes] = {}

    def affixes(self, word: str) -> _Affixes:
        """The keyword prefixes the word starts with and the suffixes it ends with."""
        candidates = self._prefixes.get(word[:_KEY], ()) + self._short_prefixes
        starts = tuple(p for p in candidates if word.startswith(p))
        candidates = self._suffixes.get(word[-_KEY:], ()) + self._short_suffixes
        ends = tuple(s for s in candidates if word.endswith(s))
        return (starts, ends) if starts or ends else _NO_AFFIXES

    def scan(self, text: str) -> _Words:
        """The words of a folded text and the known prefixes and suffixes they start or end."""
        if not text:
            return EMPTY_WORDS
        words = frozenset(_WORD.findall(text))
        starts: set[str] = set()
        ends: set[str] = set()
        known = self._known
        for word in words:
            found = known.get(word)
            if found is None:
                if len(known) >= _WORD_CACHE_SIZE:
                    known.clear()
                found = known[word] = self.affixes(word)
            if found is not _NO_AFFIXES:
                starts.update(found[0])
                ends.update(found[1])
        return _Words(words, frozenset(starts), frozenset(ends))

    @staticmethod
    def merge(a: _Words, b: _Words) -> _Words:
        """The words of two fields together."""
        if not b.words:
            return a
        if not a.words:
            return b
        return _Words(a.words | b.words, a.prefixes | b.prefixes, a.suffixes | b.suffixes)


class _Condition(ABC):
    """One condition of a rule: `holds` is the fast test, `describe` says why it held."""

    field: str

    @abstractmethod
    def holds(self, fields: _Fields) -> bool:
        """True when the event's fields satisfy the condition."""

    @abstractmethod
    def describe(self, fields: _Fields) -> str:
        """Why the condition held, for `cxloop touchpoints test`."""


class _ChannelCondition(_Condition):
    def __init__(self, channels: Sequence[str]) -> None:
        self.field = "channel"
        self._allowed = frozenset(channels)

    def holds(self, fields: _Fields) -> bool:
        return fields.channel in self._allowed

    def holds_for(self, channel: str) -> bool:
        """`holds` for an event of this channel."""
        return channel in self._allowed

    def describe(self, fields: _Fields) -> str:
        return f"channel {fields.channel!r}"


class _RegexCondition(_Condition):
    def __init__(self, field: str, patterns: Sequence[str]) -> None:
        self.field = field
        self._regex = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)

    def holds(self, fields: _Fields) -> bool:
        value: str = getattr(fields, self.field)
        return bool(value) and self._regex.search(value) is not None

    def describe(self, fields: _Fields) -> str:
        value: str = getattr(fields, self.field)
        found = self._regex.search(value)
        return f"{self.field} {value!r} matches {found.group(0) if found else '?'!r}"


class _KeywordCondition(_Condition):
    """Keywords as whole words. Plain words, `word*` and `*word` are looked up in the event's
    word sets; phrases and other forms are searched with a regex, and only when their longest
    plain word occurs in the text. Same result as `keyword_regex(keywords)`, much faster."""

    def __init__(self, field: str, keywords: Sequence[str]) -> None:
        self.field = field
        self._keywords = [(k, keyword_regex([k])) for k in (fold(k.strip()) for k in keywords)]
        self._regex = keyword_regex(keywords)
        exact, prefixes, suffixes = set(), set(), set()
        phrases: list[tuple[str | None, re.Pattern[str]]] = []
        for keyword, single in self._keywords:
            if _SIMPLE.match(keyword) and keyword.count("*") <= 1:
                if keyword.endswith("*"):
                    prefixes.add(keyword[:-1])
                elif keyword.startswith("*"):
                    suffixes.add(keyword[1:])
                else:
                    exact.add(keyword)
            else:
                phrases.append((_required_word(keyword), single))
        self.exact = frozenset(exact)
        self.prefixes = frozenset(prefixes)
        self.suffixes = frozenset(suffixes)
        self._phrases = tuple(phrases)
        self.phrase_words = frozenset(word for word, _ in phrases if word is not None)
        self.unanchored = any(word is None for word, _ in phrases)

    def holds(self, fields: _Fields) -> bool:
        found = fields.words[self.field]
        if not found.words:
            return False
        if not (
            self.exact.isdisjoint(found.words)
            and self.prefixes.isdisjoint(found.prefixes)
            and self.suffixes.isdisjoint(found.suffixes)
        ):
            return True
        if not self.unanchored and self.phrase_words.isdisjoint(found.words):
            return False
        text: str = getattr(fields, self.field)
        return any(
            (word is None or word in found.words) and regex.search(text) is not None
            for word, regex in self._phrases
        )

    def describe(self, fields: _Fields) -> str:
        text: str = getattr(fields, self.field)
        found = self._regex.search(text)
        if found is None:
            return f"{self.field} keyword ?"
        matched = found.group(0)
        keyword = next((k for k, single in self._keywords if single.fullmatch(matched)), "?")
        return f"{self.field} keyword {keyword!r} matches {matched!r}"


def _required_word(keyword: str) -> str | None:
    """The longest plain word of a phrase that any text it matches must contain."""
    candidates = [piece for piece in re.split(r"[^\w*]+", keyword) if piece and "*" not in piece]
    return max(candidates, key=len) if candidates else None


class _Gates:
    """Which keyword conditions an event's words may satisfy, found with one look-up per word.

    A keyword condition can hold only if a word of the text is one of its plain keywords or the
    required word of one of its phrases, or the text has one of its prefixes or suffixes (or it
    has a phrase without a plain word). Rules whose keyword conditions are not all opened this
    way are skipped without testing them; the rest are tested as before. Opened from the words
    of subject and comment together, a superset of any one field's: skipping stays exact.
    """

    def __init__(self, conditions: Sequence[_KeywordCondition]) -> None:
        words: dict[str, set[int]] = {}
        prefixes: dict[str, set[int]] = {}
        suffixes: dict[str, set[int]] = {}
        always: set[int] = set()
        for number, condition in enumerate(conditions):
            for word in condition.exact | condition.phrase_words:
                words.setdefault(word, set()).add(number)
            for prefix in condition.prefixes:
                prefixes.setdefault(prefix, set()).add(number)
            for suffix in condition.suffixes:
                suffixes.setdefault(suffix, set()).add(number)
            if condition.unanchored:
                always.add(number)
        self._words = {word: frozenset(numbers) for word, numbers in words.items()}
        self._prefixes = {prefix: frozenset(numbers) for prefix, numbers in prefixes.items()}
        self._suffixes = {suffix: frozenset(numbers) for suffix, numbers in suffixes.items()}
        self._always = frozenset(always)

    def open(self, found: _Words) -> set[int]:
        """The numbers of the keyword conditions these words may satisfy."""
        opened = set(self._always)
        get = self._words.get
        for word in found.words:
            numbers = get(word)
            if numbers is not None:
                opened |= numbers
        for prefix in found.prefixes:
            opened |= self._prefixes.get(prefix, frozenset())
        for suffix in found.suffixes:
            opened |= self._suffixes.get(suffix, frozenset())
        return opened


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    index: int
    spec: RuleSpec
    conditions: tuple[_Condition, ...]
    # Numbers of its keyword conditions in the tagger's `_Gates` (empty: no keyword condition).
    gates: frozenset[int] = frozenset()

    def holds(self, fields: _Fields) -> bool:
        for condition in self.conditions:  # noqa: SIM110 (a plain loop is faster on this path)
            if not condition.holds(fields):
                return False
        return True

    def needs(self) -> frozenset[str]:
        """Fields that must be non-empty for this rule to hold (`text`: subject or comment)."""
        return frozenset(c.field for c in self.conditions if c.field != "channel")

    def admits(self, channel: str) -> bool:
        """False when a channel condition of this rule rules the channel out."""
        return all(
            condition.holds_for(channel)
            for condition in self.conditions
            if isinstance(condition, _ChannelCondition)
        )

    def reasons(self, fields: _Fields) -> tuple[str, ...]:
        return tuple(condition.describe(fields) for condition in self.conditions)


def _compile(index: int, rule: RuleSpec) -> _CompiledRule:
    conditions: list[_Condition] = []
    if rule.channel is not None:
        conditions.append(_ChannelCondition(rule.channel))
    for field in ("ivr_queue", "app_screen", "url"):
        patterns = getattr(rule, field)
        if patterns is not None:
            conditions.append(_RegexCondition(field, patterns))
    for field in ("subject", "comment", "text"):
        keywords = getattr(rule, field)
        if keywords is not None:
            conditions.append(_KeywordCondition(field, keywords))
    return _CompiledRule(index, rule, tuple(conditions))


@dataclass(frozen=True, slots=True)
class Tagging:
    """The touchpoint an event gets and how it was decided."""

    touchpoint: Touchpoint
    via: Via
    rule: str | None
    why: Callable[[], tuple[str, ...]]

    @property
    def reasons(self) -> tuple[str, ...]:
        """What held: the hint, or each condition of the rule and what it matched."""
        return self.why()

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
        compiled = [_compile(i, rule) for i, rule in enumerate(taxonomy.rules)]
        keywords = [
            c for rule in compiled for c in rule.conditions if isinstance(c, _KeywordCondition)
        ]
        number = {id(condition): n for n, condition in enumerate(keywords)}
        self._rules = tuple(
            replace(
                rule, gates=frozenset(number[id(c)] for c in rule.conditions if id(c) in number)
            )
            for rule in compiled
        )
        self._gates = _Gates(keywords)
        self._candidates: dict[tuple[str, tuple[bool, ...]], tuple[_CompiledRule, ...]] = {}
        self._vocabulary = _Vocabulary(
            {p for c in keywords for p in c.prefixes}, {s for c in keywords for s in c.suffixes}
        )
        self._unclassified = taxonomy.touchpoints[UNCLASSIFIED]

    def _possible(self, channel: str, present: tuple[bool, ...]) -> tuple[_CompiledRule, ...]:
        """The rules that can hold for an event of this channel with these fields present, in
        order."""
        url, app_screen, ivr_queue, subject, comment = present
        filled = {"url": url, "app_screen": app_screen, "ivr_queue": ivr_queue}
        filled |= {"subject": subject, "comment": comment, "text": subject or comment}
        return tuple(
            r for r in self._rules if r.admits(channel) and all(filled[f] for f in r.needs())
        )

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
            hint = f"hint {event.touchpoint!r}"
            return Tagging(hinted, "hint", None, lambda: (hint,))
        text = event.comment if comment is None else comment
        ctx = event.context if context is None else context
        subject = fold(ctx.subject) if ctx.subject else ""
        folded = fold(text) if text else ""
        subject_words = self._vocabulary.scan(subject)
        comment_words = self._vocabulary.scan(folded)
        fields = _Fields(
            channel=event.channel,
            url=ctx.url,
            app_screen=ctx.app_screen,
            ivr_queue=ctx.ivr_queue,
            subject=subject,
            comment=folded,
            text=f"{subject}\n{folded}" if subject and folded else subject or folded,
            words={
                "subject": subject_words,
                "comment": comment_words,
                "text": _Vocabulary.merge(subject_words, comment_words),
            },
        )
        present = (
            bool(ctx.url),
            bool(ctx.app_screen),
            bool(ctx.ivr_queue),
            bool(subject),
            bool(folded),
        )
        # Channels are a closed set (the event schema's), so this cache stays small.
        candidates = self._candidates.get((event.channel, present))
        if candidates is None:
            candidates = self._possible(event.channel, present)
            self._candidates[event.channel, present] = candidates
        opened = self._gates.open(fields.words["text"]) if folded or subject else set()
        for rule in candidates:
            if rule.gates and not opened.issuperset(rule.gates):
                continue
            if rule.holds(fields):
                found = self.taxonomy.touchpoints[rule.spec.touchpoint]
                return Tagging(found, "rule", rule.spec.name, partial(rule.reasons, fields))
        reasons: tuple[str, ...] = ()
        if event.touchpoint:
            reasons = (f"hint {event.touchpoint!r} is not a known touchpoint",)
        return Tagging(self._unclassified, "default", None, lambda: reasons)

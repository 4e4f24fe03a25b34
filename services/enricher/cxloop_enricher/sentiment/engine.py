"""A rule-based sentiment scorer in the style of VADER (Hutto and Gilbert 2014).

Valences come from the lexicons; rules adjust them: negation flips and damps, intensifiers
scale, a contrast word ("aber", "but") weights the clause after it over what came before,
capitals and exclamation marks amplify; in German, a long text's values are scaled down by
its length. The sum is squashed into [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxloop_enricher.sentiment.lexicon import MAX_PHRASE as _MAX_PHRASE
from cxloop_enricher.sentiment.lexicon import Language, Lexicon, Role, Rules, for_language
from cxloop_enricher.sentiment.tokens import BREAKS, EMOTICONS, tokenize

NEGATION = -0.74  # VADER's factor: "not good" is less bad than "bad"
NEGATION_WINDOW = 3
SHOUT = 1.25
BEFORE_CONTRAST = 0.5
AFTER_CONTRAST = 1.5
EXCLAMATION = 0.29  # per "!", at most four
SQUASH = 15.0
_CONTRAST, _CLAUSE, _PHRASE = Role.CONTRAST, Role.CLAUSE, Role.PHRASE
_NEGATOR, _BOOSTER, _OPINION = Role.NEGATOR, Role.BOOSTER, Role.OPINION


@dataclass(frozen=True, slots=True)
class LexiconScore:
    """The engine's view of a text: compound in [-1, 1] and the positive and negative mass."""

    compound: float
    positive: float
    negative: float
    hits: int
    # The factor every value was scaled by for the text's length (German texts of more than
    # `Rules.dilution_words` words), 1.0 otherwise.
    scale: float = 1.0


def _squash(total: float) -> float:
    return total / math.sqrt(total * total + SQUASH)


def _is_word(token: str) -> bool:
    return token[0].isalnum() and token not in EMOTICONS


def score_tokens(
    tokens: list[str], language: Language, trace: list[tuple[str, float]] | None = None
) -> LexiconScore:
    """Score the tokens of a text (from `tokenize`) with one language's lexicon and rules.

    `trace`, when given, receives each valenced word, phrase or symbol with the value it added
    after the rules (and the exclamation marks' amount), for `cxloop sentiment score --explain`.
    """
    lexicon, rules, roles = language.lexicon, language.rules, language.roles
    valence, known = lexicon.valence, lexicon.cache.get
    values: list[float] = []  # one per valenced word, already weighted
    terms: list[str] | None = None if trace is None else []  # the words of `values`
    weight = 1.0
    exclamations = 0
    words: list[str] = []  # words of the current clause: the scope of negators and boosters
    skip = 0
    count = len(tokens)
    for index, token in enumerate(tokens):
        first = token[0]
        if not first.isalnum() or token in EMOTICONS:
            if first == "!":
                exclamations += len(token)
            elif first != "?" and token.strip(BREAKS):
                value = lexicon.symbol(token)
                if value:
                    values.append(value * weight)
                    if terms is not None:
                        terms.append(token)
            words.clear()
            continue
        word = token.lower()
        if skip:
            skip -= 1
            if not (rules.negated_phrases and word in rules.negators):
                words.append(word)
            continue
        role = roles.get(word, 0)  # one lookup for the common case: an ordinary word
        if role:
            if role & _CONTRAST:
                values = [value * BEFORE_CONTRAST for value in values]
                weight = AFTER_CONTRAST
                words.clear()
                continue
            if role & _CLAUSE:
                words.clear()
                continue
            if role & _PHRASE:
                value, used = _phrase(tokens, index, word, lexicon)
                if used:
                    skip = used - 1
                    value *= _boost(words, rules.boosters)
                    negated = rules.negated_phrases and _negated(words, rules)
                    if negated:
                        value *= NEGATION
                    values.append(value * weight)
                    if terms is not None:
                        phrase = " ".join(tokens[index : index + used])
                        terms.append(
                            _described(phrase, words, rules, index, tokens, negated=negated)
                        )
                    if not (rules.negated_phrases and role & _NEGATOR):
                        words.append(word)
                    continue
            if role & _NEGATOR:
                words.append(word)
                continue
            if (
                role & _BOOSTER
                and index + 1 < count
                and _is_word(tokens[index + 1])
                and not (role & _OPINION and _unvalenced(tokens[index + 1], language))
            ):
                # "super freundlich", "pretty good": an intensifier here, not an opinion itself.
                words.append(word)
                continue
        cached = known(word)
        value = valence(word) if cached is None else cached
        if value:
            value *= _boost(words, rules.boosters)
            if len(token) > 1 and token.isupper():
                value *= SHOUT
            negated = _negated(words, rules)
            trailing = 0  # where a clause-final negator of this word ends, if one negates it
            if not negated and rules.trailing_negators:
                trailing = _negated_after(tokens, index, count, rules)
            if (negated or trailing) and word not in rules.unnegated:
                value *= NEGATION
            values.append(value * weight)
            if terms is not None:
                if word in rules.unnegated:
                    negated, trailing = False, 0
                term = " ".join(tokens[index:trailing]) if trailing else token
                terms.append(_described(term, words, rules, index, tokens, negated=negated))
        words.append(word)

    dilution = 1.0
    if rules.dilution_words and count > rules.dilution_words and values:
        dilution = _dilution(tokens, rules.dilution_words)
        if dilution < 1.0:
            values = [value * dilution for value in values]
    total = sum(values)
    shouted = 0.0  # what the exclamation marks add
    if total and exclamations:
        shouted = math.copysign(min(exclamations, 4) * EXCLAMATION * dilution, total)
        total += shouted
    if trace is not None and terms is not None:
        trace += zip(terms, values, strict=True)
        if shouted:
            trace.append(("!" * min(exclamations, 4), shouted))
    positive = sum(value for value in values if value > 0)
    negative = -sum(value for value in values if value < 0)
    return LexiconScore(_squash(total), positive, negative, len(values), dilution)


def _dilution(tokens: list[str], limit: int) -> float:
    """sqrt(limit / words) for a text of more than `limit` words, else 1."""
    words = 0
    for token in tokens:
        if token[0].isalpha():
            words += 1
    return math.sqrt(limit / words) if words > limit else 1.0


def _phrase(tokens: list[str], index: int, word: str, lexicon: Lexicon) -> tuple[float, int]:
    """The valence and length of the longest phrase starting at `index` (0, 0 if none)."""
    end = min(index + _MAX_PHRASE, len(tokens))
    if index + 1 >= end or not _is_word(tokens[index + 1]):
        return 0.0, 0
    window = [word, tokens[index + 1].lower()]
    if (word, window[1]) not in lexicon.phrase_pairs:
        return 0.0, 0
    for token in tokens[index + 2 : end]:
        if not _is_word(token):
            break
        window.append(token.lower())
    for length in range(len(window), 1, -1):
        value = lexicon.phrases.get(tuple(window[:length]))
        if value is not None:
            return value, length
    return 0.0, 0


def _boost(words: list[str], boosters: dict[str, float]) -> float:
    factor = 1.0
    for word in words[-2:]:
        factor *= boosters.get(word, 1.0)
    return factor


def _negated(words: list[str], rules: Rules) -> bool:
    negators = rules.negators
    window = words[-NEGATION_WINDOW:]
    for word in window:  # a loop, not any(): no generator for the common answer, False
        if word in negators:
            break
    else:
        return False
    if not rules.near_negators:
        return True
    # A near negator reaches only the next two words: "ohne Probleme", not "ohne Ankündigung
    # ausgefallen".
    last = len(window) - 1
    return any(
        word in negators and (word not in rules.near_negators or last - position < 2)
        for position, word in enumerate(window)
    )


def _negated_after(tokens: list[str], index: int, count: int, rules: Rules) -> int:
    """German clause-final negation: "das gefällt mir nicht", "funktioniert leider nicht".

    The index just after the negator (and its tail, "nicht mehr") if the word at `index` is
    negated so, else 0.
    """
    for ahead in range(index + 1, min(index + 4, count)):
        token = tokens[ahead]
        if not token[0].isalnum() or token in EMOTICONS:  # `_is_word`, inlined
            return 0
        if token.lower() in rules.trailing_negators:
            after = ahead + 1
            if after < count and tokens[after].lower() in rules.negator_tails:
                after += 1
            return after if after >= count or not _is_word(tokens[after]) else 0
    return 0


def _described(
    term: str, words: list[str], rules: Rules, index: int, tokens: list[str], *, negated: bool
) -> str:
    """`term` as `--explain` names it: with the negator (when `negated`) and intensifiers
    before it that changed its value ("nicht gut", "not very good"), as the text has them.

    The clause's `words` are lower case; the span is taken from `tokens` when they are the same
    words there (they are unless a phrase or a symbol lies between), else from `words`.
    """
    window = words[-NEGATION_WINDOW:]
    start = len(window)
    if negated:
        start = min(position for position, word in enumerate(window) if word in rules.negators)
    for position in range(max(0, len(window) - 2), len(window)):
        if window[position] in rules.boosters:
            start = min(start, position)
            break
    modifiers = window[start:]
    if not modifiers:
        return term
    before = tokens[index - len(modifiers) : index] if index >= len(modifiers) else []
    if [token.lower() for token in before] != modifiers:
        before = modifiers
    return " ".join([*before, term])


def _unvalenced(token: str, language: Language) -> bool:
    """True for a word with no valence of its own and no rule role ("super Idee")."""
    word = token.lower()
    if language.roles.get(word, 0) & (_NEGATOR | _BOOSTER | _PHRASE):
        return False
    cached = language.lexicon.cache.get(word)
    return not (language.lexicon.valence(word) if cached is None else cached)


def score_text(
    text: str, language: str, trace: list[tuple[str, float]] | None = None
) -> LexiconScore:
    """Score `text` with the lexicon of `language` (ISO 639-1); `trace` as for `score_tokens`."""
    return score_tokens(tokenize(text), for_language(language), trace)

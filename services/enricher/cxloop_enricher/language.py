"""Offline language detection for feedback comments.

py3langid (a maintained fork of langid.py) decides on longer texts. Customer comments are often
only a few words ("nie wieder", "Top!", "app crashes"), where character n-gram statistics are
unreliable, so two cheaper signals come first: a vote of distinctive function and customer-service
words, and the sender's hint when the detector is unsure.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import islice
from typing import Any

UNDETERMINED = "und"

LANGUAGES: tuple[str, ...] = (
    "de", "en", "fr", "it", "es", "nl", "pl", "tr", "pt", "da", "sv",
)  # fmt: skip


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`."""
    return frozenset(text.split())


# Probability (normalised over LANGUAGES) above which py3langid is trusted over the hint.
CONFIDENT = 0.90
# Below this, with no hint and no marker word, the answer is the likelier of PRIMARY.
UNSURE = 0.50
PRIMARY: tuple[str, ...] = ("de", "en")
# Below this many letters the n-gram detector is not consulted when there is a hint.
SHORT_TEXT = 12

# Words that are frequent in one language and rare in the others (including CX vocabulary that
# short comments consist of). Deliberately excludes shared loanwords such as "top", "super",
# "app", "service", "hotline" and "ok".
_MARKERS: dict[str, frozenset[str]] = {
    "de": words("""
        der die das und ist nicht nie wieder kein keine keinen ich wir sie es ein eine einen mit
        auf für von zu zum zur im ist sind war waren hat haben wird wurde schon noch sehr gut
        schlecht leider danke bitte immer alles nichts auch aber oder wenn weil dass sich mir
        mich mein meine unser kam kommt lieferung paket bestellung rechnung kunde kundenservice
        freundlich unfreundlich schnell langsam spät pünktlich zufrieden unzufrieden toll prima
        klasse geht gar ganz viel zu wie was warum wo jetzt heute morgen tage tagen woche
        """),
    "en": words("""
        the and is not never again no a an i we they it with on for of to at was were has have
        had will would been very good bad thanks thank please always all nothing also but or if
        because that my our your this delivery package order bill invoice customer friendly
        unfriendly fast slow late on-time happy unhappy great awful terrible nice love hate
        still too how what why where now today days week didn't don't doesn't can't won't
        """),
    "fr": words("le la les et est pas jamais très bien merci avec pour une des du"),
    "es": words("el los las y es muy bien gracias con para una pero nunca"),
    "it": words("il gli e è non mai molto bene grazie con per una ma"),
    "nl": words("het een en is niet nooit zeer goed slecht bedankt met voor maar"),
}

_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _language, _words in _MARKERS.items():
    for _word in _words:
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _language)

# Long texts are judged on their beginning: a few hundred characters settle the language and
# keep the cost per comment flat.
SAMPLE = 400

_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*", re.UNICODE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def warm_up() -> None:
    """Load the n-gram model now (most of a second), not while the first events wait."""
    _identifier()


@cache
def _identifier() -> Any:
    # Loading the model takes most of a second: once per process, at start or on first use.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def _normalise_hint(hint: str | None) -> str | None:
    if not hint:
        return None
    code = hint.strip().lower().replace("_", "-").split("-")[0]
    return code if len(code) == 2 and code.isalpha() else None


def _vote(text: str) -> tuple[str | None, int, int]:
    """The language with most marker words, its count and the runner-up's count."""
    counts: dict[str, int] = {}
    # `map` looks every word up in C; only the few marker words reach the Python loop.
    for languages in map(_LANGUAGES_OF.get, _WORD.findall(text.lower())):
        if languages is not None:
            for language in languages:
                counts[language] = counts.get(language, 0) + 1
    if not counts:
        return None, 0, 0
    if len(counts) == 1:
        [(language, votes)] = counts.items()
        return language, votes, 0
    ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)
    return ranked[0][0], ranked[0][1], ranked[1][1]


def detect_language(text: str | None, hint: str | None = None) -> str:
    """ISO 639-1 code of `text`, `hint` when unsure, "und" with neither text nor hint."""
    hint_code = _normalise_hint(hint)
    if text and len(text) > SAMPLE:
        text = text[:SAMPLE]
    if not text or _LETTER.search(text) is None:
        return hint_code or UNDETERMINED
    if "ä" in text or "ö" in text or "ü" in text or "ß" in text:
        # German letters settle de vs en; other umlaut languages (tr, sv, ...) go on to py3langid.
        umlaut_hint: str | None = "de"
    else:
        umlaut_hint = None

    voted, votes, runner_up = _vote(text)
    if voted is not None and votes - runner_up >= 2:
        return voted
    leads = voted if voted is not None and votes > runner_up else None
    if leads is not None and leads in (hint_code, umlaut_hint) and umlaut_hint in (None, leads):
        # Two independent signals agree (a marker word and the hint or German letters): the
        # n-gram statistics would not overrule them on a short text and cost the most.
        return leads
    if hint_code is not None and _letters_below(text, SHORT_TEXT):
        return leads or hint_code

    language, probability = _identifier().classify(text)
    if probability >= CONFIDENT:
        return str(language)
    if leads is not None:
        return leads
    if hint_code is not None:
        return hint_code
    if umlaut_hint is not None:
        return umlaut_hint
    if probability < UNSURE:
        # Nothing to go on: prefer the primary languages of the deployment over a weak guess.
        ranked = dict(_identifier().rank(text))
        return max(PRIMARY, key=lambda code: float(ranked.get(code, 0.0)))
    return str(language)


def _letters_below(text: str, limit: int) -> bool:
    """True when `text` has fewer than `limit` letters (counting stops at the limit)."""
    return next(islice(_LETTER.finditer(text), limit - 1, None), None) is None

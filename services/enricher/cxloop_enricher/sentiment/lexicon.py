"""Sentiment lexicons (package data) and the per-language words the rules need."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

_INFLECTIONS = ("", "e", "er", "es", "en", "em")
# Positive, comparative and superlative forms ("schnell", "schnellere", "schnellsten"); umlaut
# comparatives ("größer") need their own entries.
_ADJECTIVE_ENDINGS = (
    _INFLECTIONS
    + tuple("er" + ending for ending in _INFLECTIONS[1:])
    + tuple("st" + ending for ending in _INFLECTIONS[1:])
    + tuple("est" + ending for ending in _INFLECTIONS[1:])
)
_MIN_AFFIX = 4
_REPEATS = re.compile(r"(.)\1{2,}")
MAX_PHRASE = 4


def _contracted(stem: str) -> str:
    """The stem that drops its e before an ending: "teuer" -> "teur" ("teure"), "miserabel" ->
    "miserabl"; empty when the adjective keeps it."""
    if stem.endswith(("auer", "euer")) or (stem.endswith("el") and len(stem) >= 4):
        return stem[:-2] + stem[-1]
    return ""


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`."""
    return frozenset(text.split())


@dataclass(frozen=True)
class Rules:
    """Function words that change the valence of their neighbours."""

    negators: frozenset[str]
    # Negators that may follow the word they negate at the end of a clause (German verb-second
    # order: "das gefällt mir nicht").
    trailing_negators: frozenset[str]
    # Multipliers for the valence of the next (or next but one) valenced word.
    boosters: dict[str, float]
    # Words after which the rest of the text weighs more and everything before less.
    contrasts: frozenset[str]
    # Words that end the window in which a negator acts.
    clause_words: frozenset[str]
    # Valenced words a negator does not flip: sentence adverbs ("leider nicht" stays negative).
    unnegated: frozenset[str] = frozenset()
    # Words that may follow a trailing negator at the end of a clause ("geht nicht mehr").
    negator_tails: frozenset[str] = frozenset()
    # An intensifier that is also an opinion ("super", "verdammt") counts as the opinion when
    # the next word carries no valence ("super Idee"); otherwise only when no word follows.
    lone_booster_opinions: bool = False
    # Phrases are units for negation: a negator before one flips it ("nicht sehr gut"), one
    # inside it ("kein Problem") reaches no further. Off for English, whose figures were
    # measured without it.
    negated_phrases: bool = False
    # Negators that reach only the next two words, not the whole window ("ohne").
    near_negators: frozenset[str] = frozenset()
    # Texts of more words than this have their valences scaled by sqrt(this / words), so that
    # a long text needs a denser opinion to reach a label (0: off). A sum of valences grows
    # with length: without the scaling, a long report of facts with a stray "gut" or "leider"
    # became an opinion. Off for English, whose thresholds and shipped model were chosen
    # without it.
    dilution_words: int = 0


@dataclass
class Lexicon:
    """Valences of words, stems, compound heads and phrases of one language."""

    words: dict[str, float] = field(default_factory=dict)
    prefixes: dict[str, float] = field(default_factory=dict)
    suffixes: dict[str, float] = field(default_factory=dict)
    phrases: dict[tuple[str, ...], float] = field(default_factory=dict)
    phrase_starts: set[str] = field(default_factory=set)
    # First two words of every phrase: most occurrences of a phrase start ("zu", "in") fail here.
    phrase_pairs: set[tuple[str, str]] = field(default_factory=set)
    symbols: dict[str, float] = field(default_factory=dict)
    # Look up unknown words also with letters repeated three or more times squeezed ("suuuper").
    squeeze: bool = False
    # Valences already looked up (affix search is the slow part); read directly by the engine.
    cache: dict[str, float] = field(default_factory=dict, repr=False)

    def add(self, term: str, valence: float) -> None:
        """Add one entry in the file syntax (see data/de_cx.tsv)."""
        term = term.strip()
        if " " in term:
            parts = tuple(term.lower().split())[:MAX_PHRASE]
            self.phrases[parts] = valence
            self.phrase_starts.add(parts[0])
            self.phrase_pairs.add((parts[0], parts[1]))
        elif term.endswith("~"):
            stem = term[:-1].lower()
            for ending in _ADJECTIVE_ENDINGS:
                self.words.setdefault(stem + ending, valence)
            short = _contracted(stem)
            if short:
                for ending in _ADJECTIVE_ENDINGS[1:]:
                    self.words.setdefault(short + ending, valence)
        elif term.endswith("*") and len(term) > _MIN_AFFIX:
            self.prefixes[term[:-1].lower()] = valence
        elif term.startswith("*") and len(term) > _MIN_AFFIX:
            self.suffixes[term[1:].lower()] = valence
        elif any(char.isalpha() for char in term) and term[0] not in ":;<>^-":
            self.words[term.lower()] = valence
        else:
            self.symbols[term] = valence

    def valence(self, word: str) -> float:
        """Valence of a lower-case word (0.0 when unknown)."""
        cached = self.cache.get(word)
        if cached is not None:
            return cached
        value = self.words.get(word)
        if value is None:
            value = self._affix(word)
            if not value and self.squeeze:
                value = self._squeezed(word)
        if len(self.cache) > 200_000:  # bound memory in a long-running process
            self.cache.clear()
        self.cache[word] = value
        return value

    def _squeezed(self, word: str) -> float:
        if not _REPEATS.search(word):
            return 0.0
        for squeezed in (_REPEATS.sub(r"\1", word), _REPEATS.sub(r"\1\1", word)):
            value = self.words.get(squeezed)
            if value is None:
                value = self._affix(squeezed)
            if value:
                return value
        return 0.0

    def _affix(self, word: str) -> float:
        if self.prefixes:
            for end in range(len(word), _MIN_AFFIX - 1, -1):
                value = self.prefixes.get(word[:end])
                if value is not None:
                    return value
        if self.suffixes:
            for start in range(1, len(word) - _MIN_AFFIX + 1):
                value = self.suffixes.get(word[start:])
                if value is not None:
                    return value
        return 0.0

    def symbol(self, text: str) -> float:
        """Valence of an emoji or emoticon (0.0 when unknown)."""
        value = self.symbols.get(text)
        if value is None and len(text) > 1:
            value = self.symbols.get(text[0])
        return value or 0.0


def _read(name: str, into: Lexicon, skip: frozenset[str] = frozenset()) -> None:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        term, _, valence = line.partition("\t")
        if term.lower() not in skip:
            into.add(term, float(valence.split("\t")[0]))


GERMAN_RULES = Rules(
    negators=words(
        "nicht nichts nie niemals kein keine keinen keinem keiner keines keinerlei ohne weder "
        "nirgends nirgendwo nimmer null nix weniger niemand"
    ),
    trailing_negators=words("nicht nie niemals"),
    boosters={
        "sehr": 1.3,
        "extrem": 1.5,
        "total": 1.4,
        "absolut": 1.4,
        "echt": 1.25,
        "wirklich": 1.25,
        "richtig": 1.2,
        "voll": 1.25,
        "super": 1.3,
        "mega": 1.4,
        "äußerst": 1.5,
        "äusserst": 1.5,
        "besonders": 1.25,
        "höchst": 1.4,
        "unglaublich": 1.4,
        "ungemein": 1.4,
        "enorm": 1.4,
        "sowas": 1.3,
        "so": 1.15,
        "zu": 1.1,
        "viel": 1.15,
        "völlig": 1.4,
        "komplett": 1.4,
        "ganz": 1.15,
        "durchaus": 1.1,
        "immer": 1.1,
        "ziemlich": 1.1,
        "recht": 1.05,
        "überaus": 1.5,
        "einfach": 1.1,
        "krass": 1.3,
        "etwas": 0.7,
        "bisschen": 0.7,
        "wenig": 0.7,
        "eher": 0.7,
        "relativ": 0.8,
        "halbwegs": 0.6,
        "einigermaßen": 0.6,
        "mäßig": 0.6,
        "fast": 0.8,
        "teilweise": 0.7,
        "kaum": 0.5,
        "leicht": 0.8,
        "minimal": 0.6,
        "geringfügig": 0.6,
        "gar": 1.2,
        "überhaupt": 1.2,
        "ausgesprochen": 1.3,
        "außerordentlich": 1.4,
        "ausserordentlich": 1.4,
        "zutiefst": 1.5,
        "deutlich": 1.2,
        "weitaus": 1.2,
        "wahnsinnig": 1.4,
        "unheimlich": 1.3,
        "tierisch": 1.3,
        "verdammt": 1.3,
        "furchtbar": 1.3,
        "schrecklich": 1.3,
        "sau": 1.3,
        "ultra": 1.4,
        "hammer": 1.3,
        "ständig": 1.3,
        "dauernd": 1.3,
        "andauernd": 1.3,
        "permanent": 1.3,
    },
    contrasts=words("aber jedoch allerdings trotzdem dennoch"),
    clause_words=words("und oder weil dass denn sondern wenn als obwohl"),
    unnegated=words(
        "leider schade bedauerlicherweise dummerweise blöderweise ärgerlicherweise "
        "glücklicherweise gottseidank gottlob"
    ),
    negator_tails=words("mehr"),
    lone_booster_opinions=True,
    negated_phrases=True,
    near_negators=words("ohne"),
    dilution_words=20,
)

ENGLISH_RULES = Rules(
    negators=words(
        "not no never none nobody nothing nowhere neither nor without cannot isn't aren't "
        "wasn't weren't don't doesn't didn't won't wouldn't can't couldn't shouldn't hasn't "
        "haven't hadn't ain't isnt arent wasnt werent dont doesnt didnt wont wouldnt cant "
        "couldnt shouldnt hasnt havent hadnt"
    ),
    trailing_negators=frozenset(),
    boosters={
        "very": 1.3,
        "extremely": 1.5,
        "totally": 1.4,
        "absolutely": 1.4,
        "really": 1.25,
        "so": 1.2,
        "too": 1.1,
        "incredibly": 1.4,
        "completely": 1.4,
        "utterly": 1.5,
        "highly": 1.3,
        "super": 1.3,
        "truly": 1.25,
        "especially": 1.2,
        "most": 1.2,
        "quite": 1.1,
        "pretty": 1.1,
        "such": 1.15,
        "fucking": 1.4,
        "damn": 1.2,
        "somewhat": 0.7,
        "slightly": 0.6,
        "little": 0.7,
        "bit": 0.7,
        "barely": 0.5,
        "hardly": 0.5,
        "kinda": 0.7,
        "fairly": 0.8,
        "rather": 0.9,
        "almost": 0.8,
    },
    contrasts=words("but however yet nevertheless nonetheless"),
    clause_words=words("and or because that since which who when while"),
)


class Role:
    """Bits for what a function word does in the rules (a word may do several things).

    Plain integers, not an IntFlag: the engine tests them for every word, and enum arithmetic
    costs more than the rest of the loop."""

    CONTRAST = 1
    CLAUSE = 2
    PHRASE = 4  # starts a phrase of the lexicon
    NEGATOR = 8
    BOOSTER = 16
    OPINION = 32  # an intensifier that is also an opinion when nothing valenced follows


@dataclass(frozen=True)
class Language:
    """A lexicon with its rules."""

    lexicon: Lexicon
    rules: Rules
    roles: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, lexicon: Lexicon, rules: Rules) -> Language:
        """The language, with the role of every function word looked up once."""
        roles: dict[str, int] = {}
        for words, role in (
            (rules.contrasts, Role.CONTRAST),
            (rules.clause_words, Role.CLAUSE),
            (lexicon.phrase_starts, Role.PHRASE),
            (rules.negators, Role.NEGATOR),
            (rules.boosters.keys(), Role.BOOSTER),
        ):
            for word in words:
                roles[word] = roles.get(word, 0) | role
        if rules.lone_booster_opinions:
            for word in rules.boosters:
                if lexicon.valence(word):
                    roles[word] |= Role.OPINION
        return cls(lexicon, rules, roles)


@cache
def _symbols() -> Lexicon:
    lexicon = Lexicon()
    _read("emoji.tsv", lexicon)
    return lexicon


def _with_symbols(lexicon: Lexicon) -> Lexicon:
    lexicon.symbols.update(_symbols().symbols)
    return lexicon


@cache
def german() -> Language:
    """The shipped German lexicon (hand-written CX vocabulary) and rules."""
    lexicon = Lexicon(squeeze=True)
    _read("de_cx.tsv", lexicon)
    return Language.build(_with_symbols(lexicon), GERMAN_RULES)


@cache
def english() -> Language:
    """VADER's lexicon (MIT) with CX additions, and rules."""
    lexicon = Lexicon()
    # Negators are rules here, not valenced words (VADER itself scores "no" at -1.2).
    _read("en_vader.tsv", lexicon, skip=ENGLISH_RULES.negators)
    _read("en_cx.tsv", lexicon)
    return Language.build(_with_symbols(lexicon), ENGLISH_RULES)


LEXICON_LANGUAGES = ("de", "en")


def lexicon_language(code: str) -> str:
    """Which shipped lexicon serves an ISO 639-1 code: German, or English for the others."""
    return "de" if code == "de" else "en"


def for_language(code: str) -> Language:
    """The lexicon for an ISO 639-1 code; English (emoji included) for other languages."""
    return german() if lexicon_language(code) == "de" else english()

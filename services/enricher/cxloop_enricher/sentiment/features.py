"""Hashed word and character n-gram features, with the lexicon engine's view appended.

Hashes are stable across processes (CRC-32 for words, a fixed polynomial for characters),
so a model trained in one process scores the same in another.

Two schemes: 2 (the default) is TF-IDF as in the usual text-classification recipe: sublinear
term frequency (1 + ln tf) times idf, character n-grams within word boundaries, the word block
and the character block each scaled to unit length. Scheme 1 (models written before it) counts
every occurrence once, takes character n-grams across the whole text and scales both blocks
together; it is kept so that those models score as they were trained.

With `FeatureConfig.embedding` a third block follows the dense one: the text's sentence
embedding (see `embedding`), unit length times `embedding_weight`, penalised like the hashed
terms.
"""

from __future__ import annotations

import collections
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from cxloop_enricher.sentiment.embedding import dimensions, embed
from cxloop_enricher.sentiment.engine import LexiconScore, score_tokens
from cxloop_enricher.sentiment.lexicon import LEXICON_LANGUAGES, for_language, lexicon_language
from cxloop_enricher.sentiment.tokens import tokenize

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(29)
DENSE = 8  # bias and lexicon features after the hashed block

Negators = tuple[tuple[str, tuple[str, ...]], ...]
"""Negation words per lexicon language, as a model pins them: ((language, (word, ...)), ...)."""


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How texts become feature vectors; stored in the model file.

    `char_min`..`char_max` is the range of character n-gram lengths; an empty range
    (`char_max < char_min`) means words, word bigrams and lexicon features only. `lexicon`
    appends the lexicon engine's scores; `idf` weights hashed features by inverse document
    frequency; `scheme` is described in the module docstring. `embedding` names a sentence
    encoder (see `embedding.ENCODERS`; "" for none) whose vector of the text follows the dense
    block, times `embedding_weight`.
    """

    bits: int = 20
    char_min: int = 2
    char_max: int = 5
    char_weight: float = 1.0
    lexicon: bool = False
    idf: bool = True
    scheme: int = 2
    negators: Negators = ()
    embedding: str = ""
    embedding_weight: float = 1.0

    def negators_for(self, language: str) -> frozenset[str]:
        """The negation words that scope the word features of a text in `language`: those the
        model was trained with (model files of version 3 on), else the lexicon's current ones.

        Pinned, a model scores as it was trained whatever later lexicon changes add or drop.
        """
        pinned = _pinned(self.negators).get(lexicon_language(language))
        return pinned if pinned is not None else for_language(language).rules.negators

    @property
    def hashed(self) -> int:
        """Size of the hashed block."""
        return 1 << self.bits

    @property
    def embedded(self) -> int:
        """Length of the embedding block (0 without an encoder)."""
        return dimensions(self.embedding)

    @property
    def size(self) -> int:
        """Length of a feature vector: hashed block, dense block, embedding block."""
        return self.hashed + DENSE + self.embedded


def pin_negators() -> Negators:
    """The lexicons' negation words now, to store in a model's feature configuration."""
    return tuple(
        (language, tuple(sorted(for_language(language).rules.negators)))
        for language in LEXICON_LANGUAGES
    )


@cache
def _pinned(negators: Negators) -> dict[str, frozenset[str]]:
    return {language: frozenset(words) for language, words in negators}


_NEGATED = np.uint64(0x5BD1E995)
_BIGRAM = np.uint64(0x27D4EB2F)
_PUNCTUATION = frozenset(".,;:!?-–—")
_WORD64 = (1 << 64) - 1
_PRIME_INT = int(_PRIME)
_MIX_INT = int(_MIX)
_SHIFT_INT = int(_SHIFT)
_NEGATED_INT = int(_NEGATED)
_BIGRAM_INT = int(_BIGRAM)


_Unigram = tuple[int, int, int, int]
_unigrams: dict[str, _Unigram] = {}
# Entries; bounds memory in a long-running process (about 300 bytes each, 30 MB at most).
_UNIGRAM_CACHE_SIZE = 100_000


def _unigram(token: str) -> _Unigram:
    """What `_word_indices` needs of a token, computed once: its CRC-32, that times the bigram
    prime, and its unigram hash mixed, plain and negated (before the mask)."""
    entry = _unigrams.get(token)
    if entry is None:
        if len(_unigrams) >= _UNIGRAM_CACHE_SIZE:
            _unigrams.clear()
        hashed = zlib.crc32(token.encode())
        entry = _unigrams[token] = (
            hashed,
            hashed * _PRIME_INT,
            ((hashed * _MIX_INT) & _WORD64) >> _SHIFT_INT,
            (((hashed ^ _NEGATED_INT) * _MIX_INT) & _WORD64) >> _SHIFT_INT,
        )
    return entry


def _word_indices(lowered: list[str], negators: frozenset[str], mask: int) -> list[int]:
    """Hashed indices of the unigrams and bigrams, in plain integers (cheaper than NumPy calls
    for the few dozen tokens of a comment). Words in the scope of a negator get their own
    features ("nicht gut" != "gut"); the scope ends at punctuation."""
    cache = _unigrams
    indices: list[int] = []
    append = indices.append
    negated = False
    previous = -1  # the previous token's CRC-32 times the prime
    for token in lowered:
        entry = cache.get(token)
        if entry is None:
            entry = _unigram(token)
        hashed, times_prime, plain, negated_plain = entry
        if token in negators:
            negated = True
        elif token[0] in _PUNCTUATION:
            negated = False
        append((negated_plain if negated else plain) & mask)
        if previous >= 0:
            # CRC-32 values are below 2**32 and the prime below 2**20, so the sum stays far
            # below 2**64: masking it to 64 bits, as the mixing does, would change nothing.
            bigram = (previous + hashed) ^ _BIGRAM_INT
            append((((bigram * _MIX_INT) & _WORD64) >> _SHIFT_INT) & mask)
        previous = times_prime
    return indices


def _char_features(text: str, low: int, high: int) -> npt.NDArray[np.uint64]:
    """Hashes of the character n-grams of `text` padded with a space, across words (scheme 1)."""
    codes = np.frombuffer(f" {text} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return _ngram_hashes(codes, low, high, None)


def _char_features_within_words(words: list[str], low: int, high: int) -> npt.NDArray[np.uint64]:
    """Hashes of the character n-grams of each word padded with a space, none across words."""
    codes = np.frombuffer(
        "\0".join(f" {word} " for word in words).encode("utf-32-le"), dtype=np.uint32
    ).astype(np.uint64)
    # separators[i] counts the word separators before position i: an n-gram starting at s
    # stays inside one word when the count does not change between s and s + n.
    return _ngram_hashes(codes, low, high, np.concatenate([[0], np.cumsum(codes == 0)]))


def _ngram_hashes(
    codes: npt.NDArray[np.uint64], low: int, high: int, separators: npt.NDArray[Any] | None
) -> npt.NDArray[np.uint64]:
    parts: list[npt.NDArray[np.uint64]] = []
    hashed = codes
    # Rolling polynomial: the hashes of the n-grams extend those of the (n-1)-grams.
    for size in range(2, high + 1):
        if len(codes) < size:
            break
        hashed = hashed[:-1] * _PRIME + codes[size - 1 :]
        if size >= low:
            kept = hashed if separators is None else hashed[separators[size:] == separators[:-size]]
            parts.append(kept ^ np.uint64(size))
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    joined = np.concatenate(parts) * _MIX
    return joined ^ (joined >> _SHIFT)


@dataclass(frozen=True, slots=True)
class Terms:
    """The hashed terms of one text before idf weighting and scaling.

    `index[:words]` is the word block, `index[words:]` the character block; `frequency` is
    1 + ln(term frequency) in scheme 2 (indices unique within a block) and 1 per occurrence
    in scheme 1 (indices repeat).
    """

    index: IntArray
    frequency: FloatArray
    words: int
    dense: FloatArray
    lexical: LexiconScore | None
    embedding: FloatArray | None = None


def terms_many(
    texts: Sequence[str], languages: Sequence[str], config: FeatureConfig
) -> list[Terms]:
    """`terms` of each text, with the sentence embeddings of all of them computed in one call
    to the encoder (several times cheaper than one call per text)."""
    vectors = embed(texts, config.embedding) if config.embedding else None
    return [
        terms(text, language, config, None if vectors is None else vectors[row])
        for row, (text, language) in enumerate(zip(texts, languages, strict=True))
    ]


def terms(
    text: str, language: str, config: FeatureConfig, embedding: FloatArray | None = None
) -> Terms:
    """The hashed word and character terms of `text`, the dense block (bias, lexicon) and,
    if the configuration names an encoder, the sentence embedding (`embedding` if given,
    computed otherwise)."""
    lang = for_language(language)
    tokens = tokenize(text)
    lowered = [token.lower() for token in tokens]
    mask = config.hashed - 1
    word_list = _word_indices(lowered, config.negators_for(language), mask)
    has_chars = config.char_max >= config.char_min
    if config.scheme == 1:
        words = np.array(word_list, dtype=np.int64)
        # Repeated n-grams stay separate entries (a dot product sums them).
        chars = (
            (_char_features(" ".join(lowered), config.char_min, config.char_max) & np.uint64(mask))
            if has_chars
            else np.zeros(0, dtype=np.uint64)
        )
        index = np.concatenate([words, chars.astype(np.int64)])
        frequency = np.full(len(index), config.char_weight, dtype=np.float32)
        frequency[: len(words)] = 1.0
    else:
        # np.unique's result, counted in Python: a comment has a few dozen words, where
        # NumPy's per-call cost outweighs the work.
        counted = collections.Counter(word_list)
        distinct = sorted(counted)
        word_index = np.array(distinct, dtype=np.int64)
        word_count = np.array([counted[i] for i in distinct], dtype=np.int64)
        if has_chars:
            hashed = _char_features_within_words(lowered, config.char_min, config.char_max)
            char_index, char_count = np.unique(
                (hashed & np.uint64(mask)).astype(np.int64), return_counts=True
            )
        else:
            char_index = char_count = np.zeros(0, dtype=np.int64)
        index = np.concatenate([word_index, char_index])
        frequency = (1.0 + np.log(np.concatenate([word_count, char_count]))).astype(np.float32)
        words = word_index
    dense = np.zeros(DENSE, dtype=np.float32)
    dense[0] = 1.0
    lexical = None
    if config.lexicon:
        lexical = score_tokens(tokens, lang)
        dense[1:] = lexicon_features(lexical, tokens)
    if config.embedding and embedding is None:
        embedding = embed([text], config.embedding)[0]
    if embedding is not None:
        embedding = (embedding * config.embedding_weight).astype(np.float32)
    return Terms(index, frequency, len(words), dense, lexical, embedding)


def lexicon_features(lexical: LexiconScore, tokens: list[str]) -> tuple[float, ...]:
    """The dense block after the bias: the lexicon engine's view of the text and its shape."""
    return (
        lexical.compound,
        min(lexical.positive, 8.0) / 4.0,
        min(lexical.negative, 8.0) / 4.0,
        1.0 if lexical.hits == 0 else 0.0,
        1.0 if any(token[0] == "?" for token in tokens) else 0.0,
        1.0 if any(token[0] == "!" for token in tokens) else 0.0,
        min(len(tokens), 60) / 60.0,
    )


def weigh(found: Terms, config: FeatureConfig, idf: FloatArray | None) -> FloatArray:
    """Values of the hashed terms: frequency times idf, scaled to unit length (scheme 2: each
    block on its own, the character block then times `char_weight`; scheme 1: together)."""
    value = found.frequency * idf[found.index] if idf is not None else found.frequency.copy()
    if config.scheme == 1:
        norm = float(np.sqrt(np.dot(value, value)))
        if norm > 0:
            value /= norm
        return value
    for block, scale in (
        (slice(0, found.words), 1.0),
        (slice(found.words, None), config.char_weight),
    ):
        part = value[block]
        norm = float(np.sqrt(np.dot(part, part)))
        if norm > 0:
            part *= scale / norm
    return value


def featurize(
    text: str, language: str, config: FeatureConfig, idf: FloatArray | None = None
) -> tuple[IntArray, FloatArray]:
    """Indices and values of the sparse feature vector of `text` (see `featurize_scored`)."""
    index, value, _ = featurize_scored(text, language, config, idf)
    return index, value


def featurize_scored(
    text: str, language: str, config: FeatureConfig, idf: FloatArray | None = None
) -> tuple[IntArray, FloatArray, LexiconScore | None]:
    """Indices and values of the feature vector of `text`, and the lexicon engine's score.

    The hashed block (see `terms` and `weigh`) comes first, the dense block after it (bias
    and lexicon features), which is never scaled, then the embedding block if any.
    """
    found = terms(text, language, config)
    values = [weigh(found, config, idf), found.dense]
    if found.embedding is not None:
        values.append(found.embedding)
    return (
        np.concatenate([found.index, _tail_index(config.hashed, config.size)]),
        np.concatenate(values),
        found.lexical,
    )


@cache
def _tail_index(hashed: int, size: int) -> IntArray:
    """Indices of the dense and embedding blocks, which every feature vector has."""
    return np.arange(hashed, size, dtype=np.int64)

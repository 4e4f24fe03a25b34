"""Hashed word and character n-gram features, with the lexicon engine's view appended.

Hashes are stable across processes (CRC-32 for words, a fixed polynomial for characters),
so a model trained in one process scores the same in another.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from cxloop_enricher.sentiment.engine import LexiconScore, score_tokens
from cxloop_enricher.sentiment.lexicon import for_language
from cxloop_enricher.sentiment.tokens import tokenize

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(29)
DENSE = 8  # bias and lexicon features after the hashed block


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How texts become feature vectors; stored in the model file.

    `char_min`..`char_max` is the range of character n-gram lengths; an empty range
    (`char_max < char_min`) means words, word bigrams and lexicon features only.
    """

    bits: int = 18
    char_min: int = 2
    char_max: int = 5
    char_weight: float = 0.5
    lexicon: bool = True
    idf: bool = False

    @property
    def hashed(self) -> int:
        """Size of the hashed block."""
        return 1 << self.bits

    @property
    def size(self) -> int:
        """Length of a feature vector."""
        return self.hashed + DENSE


_hashes: dict[str, int] = {}
_NEGATED = np.uint64(0x5BD1E995)
_BIGRAM = np.uint64(0x27D4EB2F)
_PUNCTUATION = frozenset(".,;:!?-–—")
_WORD64 = (1 << 64) - 1
_PRIME_INT = int(_PRIME)
_MIX_INT = int(_MIX)
_SHIFT_INT = int(_SHIFT)
_NEGATED_INT = int(_NEGATED)
_BIGRAM_INT = int(_BIGRAM)


def _hash(token: str) -> int:
    value = _hashes.get(token)
    if value is None:
        if len(_hashes) > 500_000:  # bound memory in a long-running process
            _hashes.clear()
        value = _hashes[token] = zlib.crc32(token.encode())
    return value


def _word_indices(lowered: list[str], negators: frozenset[str], mask: int) -> list[int]:
    """Hashed indices of the unigrams and bigrams, in plain integers (cheaper than NumPy calls
    for the few dozen tokens of a comment). Words in the scope of a negator get their own
    features ("nicht gut" != "gut"); the scope ends at punctuation."""
    cache = _hashes
    indices: list[int] = []
    append = indices.append
    negated = False
    previous = -1
    for token in lowered:
        hashed = cache.get(token)
        if hashed is None:
            hashed = _hash(token)
        if token in negators:
            negated = True
        elif token[0] in _PUNCTUATION:
            negated = False
        unigram = hashed ^ _NEGATED_INT if negated else hashed
        append((((unigram * _MIX_INT) & _WORD64) >> _SHIFT_INT) & mask)
        if previous >= 0:
            bigram = ((previous * _PRIME_INT + hashed) & _WORD64) ^ _BIGRAM_INT
            append((((bigram * _MIX_INT) & _WORD64) >> _SHIFT_INT) & mask)
        previous = hashed
    return indices


def _char_features(text: str, low: int, high: int) -> npt.NDArray[np.uint64]:
    codes = np.frombuffer(f" {text} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts: list[npt.NDArray[np.uint64]] = []
    hashed = codes
    # Rolling polynomial: the hashes of the n-grams extend those of the (n-1)-grams.
    for size in range(2, high + 1):
        if len(codes) < size:
            break
        hashed = hashed[:-1] * _PRIME + codes[size - 1 :]
        if size >= low:
            parts.append(hashed ^ np.uint64(size))
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    joined = np.concatenate(parts) * _MIX
    return joined ^ (joined >> _SHIFT)


def featurize(
    text: str,
    language: str,
    config: FeatureConfig,
    idf: FloatArray | None = None,
    *,
    normalise: bool = True,
) -> tuple[IntArray, FloatArray]:
    """Indices and values of the sparse feature vector of `text` (see `featurize_scored`)."""
    index, value, _ = featurize_scored(text, language, config, idf, normalise=normalise)
    return index, value


def featurize_scored(
    text: str,
    language: str,
    config: FeatureConfig,
    idf: FloatArray | None = None,
    *,
    normalise: bool = True,
) -> tuple[IntArray, FloatArray, LexiconScore | None]:
    """Indices and values of the feature vector of `text`, and the lexicon engine's score.

    The hashed block holds one entry per word, word bigram and character n-gram occurrence
    (indices repeat), weighted by `idf` and, if `normalise`, divided by the root of the sum of
    the squared entries; the dense block after it (bias and lexicon features) is never scaled.
    """
    lang = for_language(language)
    tokens = tokenize(text)
    lowered = [token.lower() for token in tokens]
    words = _word_indices(lowered, lang.rules.negators, config.hashed - 1)
    # Repeated n-grams stay separate entries (a dot product sums them), which saves sorting on
    # every call: the block is term frequency divided by the root of the summed squared
    # weights of all occurrences.
    if config.char_max >= config.char_min:
        chars = _char_features(" ".join(lowered), config.char_min, config.char_max)
        index = np.concatenate(
            [np.array(words, dtype=np.int64), (chars & np.uint64(config.hashed - 1))]
        ).astype(np.int64)
        value = np.full(len(index), config.char_weight, dtype=np.float32)
        value[: len(words)] = 1.0
    else:
        index = np.array(words, dtype=np.int64)
        value = np.ones(len(index), dtype=np.float32)
    if idf is not None:
        value *= idf[index]
    if normalise:
        norm = float(np.sqrt(np.dot(value, value)))
        if norm > 0:
            value /= norm
    dense = [1.0] + [0.0] * (DENSE - 1)
    lexical = None
    if config.lexicon:
        lexical = score_tokens(tokens, lang)
        dense[1:] = [
            lexical.compound,
            min(lexical.positive, 8.0) / 4.0,
            min(lexical.negative, 8.0) / 4.0,
            1.0 if lexical.hits == 0 else 0.0,
            1.0 if any(token[0] == "?" for token in lowered) else 0.0,
            1.0 if any(token[0] == "!" for token in lowered) else 0.0,
            min(len(tokens), 60) / 60.0,
        ]
    return (
        np.concatenate([index, _dense_index(config.hashed)]),
        np.concatenate([value, np.array(dense, dtype=np.float32)]),
        lexical,
    )


@cache
def _dense_index(hashed: int) -> IntArray:
    return np.arange(hashed, hashed + DENSE, dtype=np.int64)

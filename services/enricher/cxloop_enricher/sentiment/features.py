"""Hashed word and character n-gram features, with the lexicon engine's view appended.

Hashes are stable across processes (CRC-32 for words, a fixed polynomial for characters),
so a model trained in one process scores the same in another.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cxloop_enricher.sentiment.engine import score_tokens
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
    """How texts become feature vectors; stored in the model file."""

    bits: int = 18
    char_min: int = 2
    char_max: int = 5
    char_weight: float = 0.5
    lexicon: bool = True

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


def _hash(token: str) -> int:
    value = _hashes.get(token)
    if value is None:
        if len(_hashes) > 500_000:  # bound memory in a long-running process
            _hashes.clear()
        value = _hashes[token] = zlib.crc32(token.encode())
    return value


def _word_features(lowered: list[str], negators: frozenset[str]) -> npt.NDArray[np.uint64]:
    # Words in the scope of a negator get their own features ("nicht gut" != "gut"); the
    # scope ends at punctuation.
    if not lowered:
        return np.zeros(0, dtype=np.uint64)
    hashes = np.fromiter((_hash(token) for token in lowered), dtype=np.uint64, count=len(lowered))
    scope: list[bool] = []
    negated = False
    for token in lowered:
        if token in negators:
            negated = True
        elif token[0] in _PUNCTUATION:
            negated = False
        scope.append(negated)
    unigrams = np.where(np.array(scope), hashes ^ _NEGATED, hashes)
    bigrams = (hashes[:-1] * _PRIME + hashes[1:]) ^ _BIGRAM
    return np.concatenate([unigrams, bigrams])


def _char_features(text: str, low: int, high: int) -> npt.NDArray[np.uint64]:
    codes = np.frombuffer(f" {text} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts: list[npt.NDArray[np.uint64]] = []
    for size in range(low, high + 1):
        count = len(codes) - size + 1
        if count <= 0:
            break
        hashed = np.full(count, size, dtype=np.uint64)
        for offset in range(size):
            hashed = hashed * _PRIME + codes[offset : offset + count]
        parts.append(hashed)
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    joined = np.concatenate(parts) * _MIX
    return joined ^ (joined >> _SHIFT)


def featurize(text: str, language: str, config: FeatureConfig) -> tuple[IntArray, FloatArray]:
    """Indices and values of the sparse feature vector of `text` (L2-normalised block)."""
    lang = for_language(language)
    tokens = tokenize(text)
    lowered = [token.lower() for token in tokens]
    mask = np.uint64(config.hashed - 1)
    words = _word_features(lowered, lang.rules.negators)
    chars = _char_features(" ".join(lowered), config.char_min, config.char_max)
    word_index, word_count = np.unique((words * _MIX >> _SHIFT) & mask, return_counts=True)
    char_index, char_count = np.unique(chars & mask, return_counts=True)
    index = np.concatenate([word_index, char_index]).astype(np.int64)
    value = np.concatenate(
        [np.log1p(word_count), np.log1p(char_count) * config.char_weight]
    ).astype(np.float32)
    norm = float(np.sqrt(np.dot(value, value)))
    if norm > 0:
        value /= norm
    dense = np.zeros(DENSE, dtype=np.float32)
    dense[0] = 1.0
    if config.lexicon:
        lexical = score_tokens(tokens, lang)
        dense[1] = lexical.compound
        dense[2] = min(lexical.positive, 8.0) / 4.0
        dense[3] = min(lexical.negative, 8.0) / 4.0
        dense[4] = 1.0 if lexical.hits == 0 else 0.0
        dense[5] = 1.0 if any(token[0] == "?" for token in tokens) else 0.0
        dense[6] = 1.0 if any(token[0] == "!" for token in tokens) else 0.0
        dense[7] = min(len(tokens), 60) / 60.0
    dense_index = np.arange(config.hashed, config.size, dtype=np.int64)
    return np.concatenate([index, dense_index]), np.concatenate([value, dense])

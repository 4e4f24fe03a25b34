"""Scoring a word-only linear model in plain Python.

A comment has a few dozen word and bigram features. For so few, NumPy's cost per call (arrays
built, gathered, concatenated, scaled and multiplied about fifteen times per text) outweighs the
arithmetic: the plain loop below scores the shipped English model in about 60 % of the time.
It computes what `features.featurize_scored` and `LinearModel.predict` compute, in float64
instead of float32, so probabilities agree to about 1e-7 (tests hold it to 1e-6).

Only models without character n-grams in feature scheme 2 qualify (`PlainScorer.fits`); others
keep the NumPy path, where a text's hundreds of character n-grams make NumPy the faster one.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cxloop_enricher.sentiment.engine import LexiconScore, score_tokens
from cxloop_enricher.sentiment.features import (
    DENSE,
    FeatureConfig,
    _word_indices,
    lexicon_features,
)
from cxloop_enricher.sentiment.lexicon import for_language
from cxloop_enricher.sentiment.tokens import tokenize

_ROW_CACHE_SIZE = 100_000
_UNSEEN = (0.0, 0.0, 0.0, 0.0)  # shared by every feature training never saw (idf 0)


class PlainScorer:
    """Class probabilities of a word-only scheme-2 model, computed without NumPy per text."""

    def __init__(
        self,
        config: FeatureConfig,
        weights: npt.NDArray[np.float32],
        idf: npt.NDArray[np.float32] | None,
    ) -> None:
        if not self.fits(config):
            raise ValueError("only word-only models of feature scheme 2 are scored in plain Python")
        self._config = config
        self._classes = int(weights.shape[1])
        # Flat float32 arrays: an element read is a Python float, and no object is kept per
        # weight (a list of lists would take about ten times the memory).
        self._weights = array("f", np.ascontiguousarray(weights, dtype=np.float32).tobytes())
        self._idf = (
            None if idf is None else array("f", np.ascontiguousarray(idf, np.float32).tobytes())
        )
        self._rows: dict[int, tuple[float, float, float, float]] = {}
        self._dense_rows: list[tuple[float, float, float]] | None = None
        if self._classes == 3:
            first = config.hashed * 3
            w = self._weights
            self._dense_rows = [
                (w[first + 3 * i], w[first + 3 * i + 1], w[first + 3 * i + 2]) for i in range(DENSE)
            ]

    @staticmethod
    def fits(config: FeatureConfig) -> bool:
        """True for the models this scorer computes exactly like the NumPy path."""
        return config.scheme == 2 and config.char_max < config.char_min and not config.embedding

    def predict(self, text: str, language: str) -> tuple[list[float], LexiconScore | None]:
        """Class probabilities (in the model's class order) and the lexicon engine's score."""
        config = self._config
        lang = for_language(language)
        tokens = tokenize(text)
        lowered = [token.lower() for token in tokens]
        negators = config.negators_for(language)
        counted = Counter(_word_indices(lowered, negators, config.hashed - 1))
        logits = self._hashed_logits(counted)
        lexical = None
        dense: tuple[float, ...]
        if config.lexicon:
            lexical = score_tokens(tokens, lang)
            dense = (1.0, *lexicon_features(lexical, tokens))
        else:
            dense = (1.0,) + (0.0,) * (DENSE - 1)
        dense_rows = self._dense_rows
        if dense_rows is not None:
            # Three classes: the dense block's rows were read once, at load.
            l0, l1, l2 = logits
            for value, (w0, w1, w2) in zip(dense, dense_rows, strict=True):
                if value:
                    l0 += value * w0
                    l1 += value * w1
                    l2 += value * w2
            logits = [l0, l1, l2]
        else:
            self._add_rows(logits, config.hashed, dense)
        return _softmax(logits), lexical

    def _hashed_logits(self, counted: Counter[int]) -> list[float]:
        """The word block's contribution: sublinear tf times idf, scaled to unit length."""
        idf, classes = self._idf, self._classes
        log = math.log
        if classes == 3 and idf is not None:
            # The common case unrolled: one pass sums the squares and the unscaled logits. A
            # feature's idf and weights are read from the arrays once and kept as one tuple
            # (one look-up instead of four reads that each build a float).
            rows = self._rows
            s0 = s1 = s2 = squares = 0.0
            for index, n in counted.items():
                row = rows.get(index)
                if row is None:
                    row = self._row(index)
                if row is _UNSEEN:
                    continue  # idf 0: adds exactly nothing to the squares or the logits
                weight, w0, w1, w2 = row
                value = (1.0 + log(n)) * weight if n > 1 else weight
                squares += value * value
                s0 += value * w0
                s1 += value * w1
                s2 += value * w2
            scale = 1.0 / math.sqrt(squares) if squares > 0 else 1.0
            return [s0 * scale, s1 * scale, s2 * scale]
        values = [
            (index, (1.0 + log(n)) * (idf[index] if idf is not None else 1.0))
            for index, n in counted.items()
        ]
        squares = sum(value * value for _, value in values)
        scale = 1.0 / math.sqrt(squares) if squares > 0 else 1.0
        logits = [0.0] * classes
        self._add_rows(logits, 0, [value * scale for _, value in values], [i for i, _ in values])
        return logits

    def _row(self, index: int) -> tuple[float, float, float, float]:
        """Idf and the three class weights of hashed feature `index`, kept for the next text."""
        rows = self._rows
        if len(rows) >= _ROW_CACHE_SIZE:  # bound memory for models with large hashed blocks
            rows.clear()
        weights, idf = self._weights, self._idf
        assert idf is not None
        first = index * 3
        weight = idf[index]
        row = rows[index] = (
            (weight, weights[first], weights[first + 1], weights[first + 2]) if weight else _UNSEEN
        )
        return row

    def _add_rows(
        self,
        logits: list[float],
        first: int,
        values: Sequence[float],
        indices: Sequence[int] | None = None,
    ) -> None:
        """logits += sum of values[i] times weight row (first + i), or row indices[i]."""
        weights, classes = self._weights, self._classes
        for position, value in enumerate(values):
            if not value:
                continue
            row = (first + position if indices is None else indices[position]) * classes
            for column in range(classes):
                logits[column] += value * weights[row + column]


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exp = [math.exp(logit - top) for logit in logits]
    total = sum(exp)
    return [value / total for value in exp]

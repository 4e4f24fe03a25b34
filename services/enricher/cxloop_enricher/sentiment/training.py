"""Training the linear model: full-batch softmax regression with Adam, in NumPy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cxloop_enricher.sentiment.features import FeatureConfig, featurize
from cxloop_enricher.sentiment.model import LinearModel

Float = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrainingConfig:
    """Optimiser settings; the defaults suit a few hundred to a few ten thousand comments."""

    epochs: int = 120
    learning_rate: float = 0.05
    l2: float = 1e-3
    balanced: bool = True


@dataclass(frozen=True)
class _Matrix:
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    data: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]

    @property
    def count(self) -> int:
        return len(self.indptr) - 1


def _matrix(
    texts: Sequence[str], languages: Sequence[str], config: FeatureConfig
) -> tuple[_Matrix, npt.NDArray[np.float32] | None]:
    """The feature matrix (CSR) and, if configured, the idf it was weighted with."""
    indices: list[npt.NDArray[np.int64]] = []
    values: list[npt.NDArray[np.float32]] = []
    for text, language in zip(texts, languages, strict=True):
        index, value = featurize(text, language, config, normalise=False)
        indices.append(index)
        values.append(value)
    lengths = np.array([len(index) for index in indices], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    index = np.concatenate(indices)
    data = np.concatenate(values)
    hashed = index < config.hashed
    idf = None
    if config.idf:
        frequency = np.bincount(index[hashed], minlength=config.hashed)
        idf = (np.log((1 + len(texts)) / (1 + frequency)) + 1).astype(np.float32)
        data[hashed] *= idf[index[hashed]]
    squares = np.where(hashed, data * data, 0).astype(np.float64)
    norms = np.sqrt(np.add.reduceat(squares, indptr[:-1]))
    norms[norms == 0] = 1.0
    data[hashed] /= norms[rows[hashed]].astype(np.float32)
    return _Matrix(indptr, index, data, rows), idf


def _logits(matrix: _Matrix, weights: Float) -> Float:
    columns = [
        np.add.reduceat(matrix.data * weights[matrix.indices, column], matrix.indptr[:-1])
        for column in range(weights.shape[1])
    ]
    return np.stack(columns, axis=1).astype(np.float64)


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    languages: Sequence[str],
    *,
    features: FeatureConfig | None = None,
    training: TrainingConfig | None = None,
) -> LinearModel:
    """Fit a model to labelled texts (each with its ISO 639-1 language)."""
    features = features or FeatureConfig()
    training = training or TrainingConfig()
    if not texts:
        raise ValueError("no training data")
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got {classes}")
    target = np.array([classes.index(label) for label in labels], dtype=np.int64)
    matrix, idf = _matrix(texts, languages, features)
    onehot = np.eye(len(classes))[target]
    counts = np.bincount(target, minlength=len(classes)).astype(np.float64)
    sample_weight: Float = (
        (len(target) / (len(classes) * counts))[target]
        if training.balanced
        else np.ones(len(target), dtype=np.float64)
    )
    sample_weight /= sample_weight.sum()

    weights = np.zeros((features.size, len(classes)), dtype=np.float64)
    # The bias and the few lexicon features are not shrunk: on a few hundred comments they are
    # the most reliable evidence there is.
    penalised = np.ones((features.size, 1), dtype=np.float64)
    penalised[features.hashed :] = 0.0
    moment = np.zeros_like(weights)
    velocity = np.zeros_like(weights)
    beta1, beta2, epsilon = 0.9, 0.999, 1e-8
    for step in range(1, training.epochs + 1):
        logits = _logits(matrix, weights)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        residual = (probabilities - onehot) * sample_weight[:, None]
        gradient: Float = np.stack(
            [
                np.bincount(
                    matrix.indices,
                    weights=matrix.data * residual[matrix.rows, column],
                    minlength=features.size,
                )
                for column in range(len(classes))
            ],
            axis=1,
        ).astype(np.float64)
        gradient = gradient + training.l2 * penalised * weights
        moment = beta1 * moment + (1 - beta1) * gradient
        velocity = beta2 * velocity + (1 - beta2) * gradient * gradient
        corrected = moment / (1 - beta1**step)
        scale = np.sqrt(velocity / (1 - beta2**step)) + epsilon
        weights -= training.learning_rate * corrected / scale
    return LinearModel(classes, features, weights.astype(np.float32), idf)

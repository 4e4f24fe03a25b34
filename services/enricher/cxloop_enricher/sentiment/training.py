"""Training the linear model: class-balanced softmax regression with L2, in NumPy only.

The optimiser is full-batch L-BFGS (a few dozen lines below; the objective is smooth and
convex, so it converges in a hundred or so steps where plain gradient descent needs
thousands). The strength of the L2 penalty is chosen by cross-validation inside the training
data unless it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from cxloop_enricher.sentiment.evaluation import folds, score
from cxloop_enricher.sentiment.features import (
    DENSE,
    FeatureConfig,
    Terms,
    pin_negators,
    terms_many,
    weigh,
)
from cxloop_enricher.sentiment.model import LinearModel

Float = npt.NDArray[np.float64]
Int = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainingConfig:
    """Optimiser and regularisation settings.

    `l2` is the penalty on the mean class-balanced loss; None chooses it by `inner_folds`-fold
    cross-validation on the training data from 1 / (C * examples) for each C in `strengths`
    (C as in scikit-learn's LogisticRegression: larger means weaker regularisation). With
    `choose_lexicon` that search also decides whether to append the lexicon engine's scores
    (overriding `FeatureConfig.lexicon`). Off by default: on GermEval the inner search picked
    them in some folds and cost 0.04 in the outer cross-validation (0.581 against 0.619; since
    the second German lexicon round, lexicon scores always on cost 0.002 on average).
    """

    iterations: int = 300
    l2: float | None = None
    strengths: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    inner_folds: int = 3
    balanced: bool = True
    choose_lexicon: bool = False


@dataclass(frozen=True)
class _Matrix:
    """Rows of features in CSR form over compacted columns (hashed columns seen in training,
    then the dense block)."""

    indptr: Int
    columns: Int
    data: npt.NDArray[np.float64]
    rows: Int

    @property
    def count(self) -> int:
        return len(self.indptr) - 1


def _idf(found: Sequence[Terms], config: FeatureConfig) -> npt.NDArray[np.float32]:
    """Smoothed inverse document frequency; 0 for terms never seen in training, so that unseen
    words neither count nor dilute the known ones when a row is scaled to unit length."""
    frequency = np.bincount(np.concatenate([t.index for t in found]), minlength=config.hashed)
    idf = np.log((1 + len(found)) / (1 + frequency)) + 1
    idf[frequency == 0] = 0.0
    return idf.astype(np.float32)


def _matrix(
    found: Sequence[Terms],
    config: FeatureConfig,
    idf: npt.NDArray[np.float32] | None,
    vocabulary: Int,
) -> _Matrix:
    """The feature rows of `found`, hashed indices mapped to positions in `vocabulary` (sorted;
    terms outside it are dropped), then the dense block and the embedding block."""
    indices: list[Int] = []
    values: list[npt.NDArray[np.float32]] = []
    tail = np.arange(len(vocabulary), len(vocabulary) + DENSE + config.embedded, dtype=np.int64)
    for item in found:
        position = np.searchsorted(vocabulary, item.index)
        known = (position < len(vocabulary)) & (
            vocabulary[np.minimum(position, len(vocabulary) - 1)] == item.index
        )
        value = weigh(item, config, idf)
        indices += [position[known], tail]
        values += [value[known], item.dense]
        if item.embedding is not None:
            values.append(item.embedding)
    lengths = np.array([len(index) for index in indices[::2]], dtype=np.int64) + len(tail)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rows = np.repeat(np.arange(len(found), dtype=np.int64), lengths)
    return _Matrix(indptr, np.concatenate(indices), np.concatenate(values).astype(np.float64), rows)


def _logits(matrix: _Matrix, weights: Float) -> Float:
    products = matrix.data[:, None] * weights[matrix.columns]
    return np.add.reduceat(products, matrix.indptr[:-1], axis=0)


def _objective(
    matrix: _Matrix, onehot: Float, sample_weight: Float, penalised: Float, l2: float
) -> Callable[[Float], tuple[float, Float]]:
    """Mean class-balanced cross-entropy plus l2/2 times the squared penalised weights."""
    classes = onehot.shape[1]
    size = int(penalised.shape[0])

    def evaluate(flat: Float) -> tuple[float, Float]:
        weights = flat.reshape(size, classes)
        logits = _logits(matrix, weights)
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        log_probabilities = logits - log_norm
        loss = -float(np.sum(sample_weight * np.sum(onehot * log_probabilities, axis=1)))
        residual = (np.exp(log_probabilities) - onehot) * sample_weight[:, None]
        spread = matrix.data[:, None] * residual[matrix.rows]
        gradient: Float = np.stack(
            [
                np.bincount(matrix.columns, weights=spread[:, column], minlength=size)
                for column in range(classes)
            ],
            axis=1,
        ).astype(np.float64)
        shrunk = penalised * weights
        loss += 0.5 * l2 * float(np.sum(shrunk * weights))
        gradient += l2 * shrunk
        return loss, gradient.ravel()

    return evaluate


def minimise(
    evaluate: Callable[[Float], tuple[float, Float]],
    start: Float,
    *,
    iterations: int,
    memory: int = 10,
    tolerance: float = 1e-7,
) -> Float:
    """Minimise a smooth function with L-BFGS and a backtracking (Armijo) line search."""
    point = start.copy()
    value, gradient = evaluate(point)
    history: list[tuple[Float, Float, float]] = []
    for _ in range(iterations):
        direction = -_inverse_hessian_times(gradient, history)
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            history.clear()
            direction, slope = -gradient, -float(gradient @ gradient)
        step = 1.0 if history else 1.0 / max(1.0, float(np.sqrt(-slope)))
        while True:
            candidate = point + step * direction
            new_value, new_gradient = evaluate(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        moved, change = candidate - point, new_gradient - gradient
        curvature = float(moved @ change)
        if curvature > 1e-12:
            history.append((moved, change, 1.0 / curvature))
            if len(history) > memory:
                history.pop(0)
        converged = value - new_value <= tolerance * max(abs(value), abs(new_value), 1.0)
        point, value, gradient = candidate, new_value, new_gradient
        if converged or float(np.max(np.abs(gradient))) < 1e-6:
            break
    return point


def _inverse_hessian_times(gradient: Float, history: list[tuple[Float, Float, float]]) -> Float:
    """The L-BFGS two-loop recursion."""
    result = gradient.copy()
    alphas: list[float] = []
    for moved, change, rho in reversed(history):
        alpha = rho * float(moved @ result)
        result -= alpha * change
        alphas.append(alpha)
    if history:
        moved, change, _ = history[-1]
        result *= float(moved @ change) / float(change @ change)
    for (moved, change, rho), alpha in zip(history, reversed(alphas), strict=True):
        result += moved * (alpha - rho * float(change @ result))
    return result


@dataclass(frozen=True)
class _Fitted:
    weights: Float
    vocabulary: Int
    idf: npt.NDArray[np.float32] | None


def _fit(
    found: Sequence[Terms],
    target: Int,
    classes: int,
    features: FeatureConfig,
    training: TrainingConfig,
    *,
    l2: float,
) -> _Fitted:
    idf = _idf(found, features) if features.idf else None
    vocabulary = np.unique(np.concatenate([t.index for t in found]))
    matrix = _matrix(found, features, idf, vocabulary)
    onehot = np.eye(classes)[target]
    counts = np.maximum(np.bincount(target, minlength=classes), 1).astype(np.float64)
    sample_weight: Float = (
        (len(target) / (classes * counts))[target]
        if training.balanced
        else np.ones(len(target), dtype=np.float64)
    )
    sample_weight /= sample_weight.sum()
    size = len(vocabulary) + DENSE + features.embedded
    # The bias and the few lexicon features are not shrunk: on a few hundred comments they are
    # the most reliable evidence there is. The embedding block is, like the hashed terms.
    penalised = np.ones((size, 1), dtype=np.float64)
    penalised[len(vocabulary) : len(vocabulary) + DENSE] = 0.0
    evaluate = _objective(matrix, onehot, sample_weight, penalised, l2)
    flat = minimise(evaluate, np.zeros(size * classes), iterations=training.iterations)
    return _Fitted(flat.reshape(size, classes), vocabulary, idf)


def _predict(fitted: _Fitted, found: Sequence[Terms], features: FeatureConfig) -> Int:
    matrix = _matrix(found, features, fitted.idf, fitted.vocabulary)
    return np.asarray(_logits(matrix, fitted.weights).argmax(axis=1), dtype=np.int64)


def choose_l2(
    found: Sequence[Terms],
    target: Int,
    classes: int,
    features: FeatureConfig,
    training: TrainingConfig,
) -> tuple[float, float]:
    """The penalty (from `training.strengths`) with the best macro-F1 in inner cross-validation,
    and that macro-F1."""
    inner = max(2, min(training.inner_folds, int(np.bincount(target).min())))
    best, best_f1 = 0.0, -1.0
    for strength in training.strengths:
        l2 = 1.0 / (strength * len(found))
        predicted = np.zeros(len(found), dtype=np.int64)
        for train_rows, test_rows in folds(len(found), inner, seed=29):
            fitted = _fit(
                [found[i] for i in train_rows],
                target[train_rows],
                classes,
                features,
                training,
                l2=l2,
            )
            predicted[test_rows] = _predict(fitted, [found[i] for i in test_rows], features)
        macro = score([str(label) for label in target], [str(label) for label in predicted])
        if macro.macro_f1 > best_f1 + 1e-9:
            best, best_f1 = l2, macro.macro_f1
    return best, best_f1


def _without_lexicon(found: Terms) -> Terms:
    dense = np.zeros_like(found.dense)
    dense[0] = found.dense[0]
    return replace(found, dense=dense, lexical=None)


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
    if not features.negators:
        # The model keeps the negation words it learned with (see FeatureConfig.negators_for).
        features = replace(features, negators=pin_negators())
    training = training or TrainingConfig()
    if features.scheme != 2:
        raise ValueError("training writes feature scheme 2 only")
    if not texts:
        raise ValueError("no training data")
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got {classes}")
    target = np.array([classes.index(label) for label in labels], dtype=np.int64)
    search = training.l2 is None and (training.choose_lexicon or len(training.strengths) > 1)
    if search and training.choose_lexicon:
        with_lexicon = replace(features, lexicon=True)
        found = terms_many(texts, languages, with_lexicon)
        plain = [_without_lexicon(item) for item in found]
        l2_with, f1_with = choose_l2(found, target, len(classes), with_lexicon, training)
        l2_plain, f1_plain = choose_l2(plain, target, len(classes), features, training)
        if f1_plain >= f1_with:
            features, found, l2 = replace(features, lexicon=False), plain, l2_plain
        else:
            features, l2 = with_lexicon, l2_with
    else:
        found = terms_many(texts, languages, features)
        if training.l2 is not None:
            l2 = training.l2
        elif len(training.strengths) == 1:
            l2 = 1.0 / (training.strengths[0] * len(found))
        else:
            l2, _ = choose_l2(found, target, len(classes), features, training)
    fitted = _fit(found, target, len(classes), features, training, l2=l2)
    weights = np.zeros((features.size, len(classes)), dtype=np.float32)
    weights[fitted.vocabulary] = fitted.weights[: len(fitted.vocabulary)]
    weights[features.hashed :] = fitted.weights[len(fitted.vocabulary) :]
    return LinearModel(classes, features, weights, fitted.idf)

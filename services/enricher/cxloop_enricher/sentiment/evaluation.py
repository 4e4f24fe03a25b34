"""Reading labelled TSV files and scoring predictions (macro-F1, per-class F1, baselines)."""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxloop_enricher.sentiment.result import LABELS

EVALUATED = ("negative", "neutral", "positive")
_GERMAN_LABELS = {"negativ": "negative", "positiv": "positive", "gemischt": "mixed"}
# The labels a file may use: cxloop's own, and their German names.
FILE_LABELS = {label: label for label in LABELS} | _GERMAN_LABELS


@dataclass(frozen=True)
class Example:
    """One labelled text."""

    text: str
    label: str


@dataclass(frozen=True)
class Scores:
    """Per-class and macro-averaged F1 over the classes present in the gold labels."""

    macro_f1: float
    per_class: dict[str, float]
    support: dict[str, int]


@dataclass(frozen=True)
class _Columns:
    """Where a file keeps its text and label: from its header, or text first and label last."""

    text: int
    label: int
    width: int
    """Columns a line has when its text holds no tab (the header's; 0 without a header)."""

    def read(self, row: list[str]) -> tuple[str, str] | None:
        """(text, label) of a line, or None when it lacks a column. A text may hold tabs (the
        file is not quoted): a line's columns beyond the header's belong to the text."""
        if not self.width:
            return ("\t".join(row[:-1]), row[-1]) if len(row) >= 2 else None
        surplus = max(0, len(row) - self.width)
        label = self.label + surplus if self.label > self.text else self.label
        if max(self.text + surplus, label) >= len(row):
            return None
        return "\t".join(row[self.text : self.text + surplus + 1]), row[label]


_HEADERLESS = _Columns(text=0, label=-1, width=0)  # text first, label last


def _header(path: str | Path, row: list[str]) -> _Columns | None:
    """The columns a first line names, when it is a header: it names `text` and `label` (in any
    case and order, with other columns beside them, which are ignored)."""
    names = [column.strip().lower() for column in row]
    if "text" not in names or "label" not in names:
        return None
    for name in ("text", "label"):
        if names.count(name) > 1:
            raise ValueError(f"{path}:1: the header names the column {name!r} twice")
    return _Columns(text=names.index("text"), label=names.index("label"), width=len(row))


def read_tsv(path: str | Path) -> list[Example]:
    """Examples from a tab-separated file of texts and their labels.

    With a header (a first line naming the columns `text` and `label`, in any case and order),
    those two columns are read and any others ignored. Without one, each line is
    `text<TAB>label`: the label is the last column. The file is not quoted, so a text may hold
    tabs; the columns a line has beyond the header's (or before the label, without a header)
    belong to its text.

    A label is negative, neutral, positive or mixed (any case; German negativ, positiv and
    gemischt are read as those); any other label is an error naming its line, so that a typo
    cannot become a class of its own."""
    examples: list[Example] = []
    columns = _HEADERLESS
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            for number, row in enumerate(reader, start=1):
                if not row:
                    continue
                if number == 1 and (header := _header(path, row)) is not None:
                    columns = header
                    continue
                pair = columns.read(row)
                if pair is None:
                    raise ValueError(f"{path}:{number}: {_expected(columns, row)}")
                text, label = pair
                if label.strip().lower() not in FILE_LABELS:
                    hint = "; a header line names the columns text and label" if number == 1 else ""
                    raise ValueError(
                        f"{path}:{number}: unknown label {label.strip()!r} (expected one of "
                        f"{', '.join(LABELS)}; German {', '.join(_GERMAN_LABELS)}){hint}"
                    )
                examples.append(Example(text, FILE_LABELS[label.strip().lower()]))
        except csv.Error as exc:
            raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
    return examples


def _expected(columns: _Columns, row: list[str]) -> str:
    if not columns.width:
        return "expected text<TAB>label"
    return (
        f"expected {columns.width} tab-separated columns as in the header (text in column "
        f"{columns.text + 1}, label in column {columns.label + 1}), got {len(row)}"
    )


def collapse(label: str) -> str:
    """The label as evaluated: mixed counts as neutral."""
    return "neutral" if label == "mixed" else label


def score(gold: Sequence[str], predicted: Sequence[str]) -> Scores:
    """F1 per gold class and their unweighted mean (mixed counts as neutral)."""
    gold = [collapse(label) for label in gold]
    predicted = [collapse(label) for label in predicted]
    classes = sorted(set(gold))
    per_class: dict[str, float] = {}
    for name in classes:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == name and p == name)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != name and p == name)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == name and p != name)
        per_class[name] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    macro = sum(per_class.values()) / len(per_class) if per_class else 0.0
    return Scores(macro, per_class, dict(Counter(gold)))


def bootstrap_interval(
    gold: Sequence[str],
    predicted: Sequence[str],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 13,
) -> tuple[float, float]:
    """A percentile bootstrap interval of the macro-F1: the examples are drawn again with
    replacement `resamples` times, and the middle `level` of the resampled scores is returned.

    It says how much the figure would move on another sample of the same kind of texts. The
    macro average is over the classes of the whole file; a class that a resample happens to
    lack counts 0 there (which matters only for classes with a handful of examples).
    """
    names = sorted(set(map(collapse, gold)))
    index = {name: number for number, name in enumerate(names)}
    truth = np.array([index[collapse(label)] for label in gold], dtype=np.int8)
    guess = np.array([index.get(collapse(label), -1) for label in predicted], dtype=np.int8)
    generator = np.random.default_rng(seed)
    scores: list[np.ndarray] = []
    chunk = max(1, 2_000_000 // max(len(truth), 1))  # resamples per step: bounded memory
    for start in range(0, resamples, chunk):
        rows = generator.integers(0, len(truth), size=(min(chunk, resamples - start), len(truth)))
        drawn_truth, drawn_guess = truth[rows], guess[rows]
        f1 = np.zeros(rows.shape[0])
        for number in range(len(names)):
            is_truth, is_guess = drawn_truth == number, drawn_guess == number
            tp = np.count_nonzero(is_truth & is_guess, axis=1)
            wrong = np.count_nonzero(is_truth ^ is_guess, axis=1)  # false positives and negatives
            f1 += np.where(tp > 0, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0)
        scores.append(f1 / len(names))
    low, high = np.quantile(np.concatenate(scores), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def majority_baseline(gold: Sequence[str]) -> tuple[str, Scores]:
    """The most frequent gold class and the scores of always answering it."""
    majority = Counter(collapse(label) for label in gold).most_common(1)[0][0]
    return majority, score(gold, [majority] * len(gold))


def folds(count: int, k: int, seed: int = 13) -> Iterable[tuple[list[int], list[int]]]:
    """Shuffled k-fold (train, test) index splits."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    for fold in range(k):
        test = order[fold::k]
        chosen = set(test)
        yield [index for index in order if index not in chosen], test

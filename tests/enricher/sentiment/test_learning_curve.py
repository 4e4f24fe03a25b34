"""The learning-curve benchmark's class-stratified, nested training subsets."""

from __future__ import annotations

from collections import Counter

from benchmarks.learning_curve import stratified_subset

LABELS = ["neutral"] * 60 + ["negative"] * 30 + ["positive"] * 10
ROWS = list(range(0, 100, 1))


def test_keeps_the_class_proportions() -> None:
    subset = stratified_subset(ROWS, LABELS, 50, seed=1)
    assert len(subset) == 50
    assert Counter(LABELS[row] for row in subset) == {"neutral": 30, "negative": 15, "positive": 5}


def test_largest_remainders_fill_the_size() -> None:
    subset = stratified_subset(ROWS, LABELS, 7, seed=1)
    counts = Counter(LABELS[row] for row in subset)
    assert len(subset) == 7
    # quotas 4.2 / 2.1 / 0.7: the positive class has the largest remainder
    assert counts == {"neutral": 4, "negative": 2, "positive": 1}


def test_smaller_subsets_are_part_of_larger_ones_and_keep_the_order() -> None:
    rows = ROWS[::2] + ROWS[1::2]  # an order that is not sorted
    small = stratified_subset(rows, LABELS, 20, seed=7)
    large = stratified_subset(rows, LABELS, 60, seed=7)
    assert set(small) <= set(large)
    assert large == [row for row in rows if row in set(large)]


def test_all_rows_when_the_size_is_reached() -> None:
    assert stratified_subset(ROWS, LABELS, 100, seed=1) == ROWS
    assert stratified_subset(ROWS, LABELS, 500, seed=1) == ROWS

"""The outcome of sentiment analysis and the thresholds that turn a score into a label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Label = Literal["negative", "neutral", "positive", "mixed"]
LABELS: tuple[Label, ...] = get_args(Label)


@dataclass(frozen=True, slots=True)
class SentimentResult:
    """A label and a score in [-1, 1] (negative below zero)."""

    label: Label
    score: float


def clamp(score: float) -> float:
    """`score` limited to [-1, 1]."""
    return -1.0 if score < -1.0 else 1.0 if score > 1.0 else score

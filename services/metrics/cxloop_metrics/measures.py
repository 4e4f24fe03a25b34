"""What a bucket stores: score histograms and sums, additive across buckets and dimensions.

Storing the full histogram of each scale (not promoter/detractor counts) lets `kpis.yaml` move
a threshold and have it apply to all stored data, and gives exact means and variances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

NPS_COLUMNS: Final = tuple(f"nps_{score}" for score in range(11))
CSAT_COLUMNS: Final = tuple(f"csat_{score}" for score in range(1, 6))
CES_COLUMNS: Final = tuple(f"ces_{score}" for score in range(1, 8))
COUNT_COLUMNS: Final = (
    "responses",
    *NPS_COLUMNS,
    *CSAT_COLUMNS,
    *CES_COLUMNS,
    "sentiment_n",
    "negative_n",
)
SUM_COLUMNS: Final = ("sentiment_sum", "sentiment_sumsq")
MEASURES: Final = (*COUNT_COLUMNS, *SUM_COLUMNS)
"""Every measure column, in the order `Totals.from_row` expects."""

DIMENSIONS: Final = ("touchpoint", "channel", "journey_stage", "region", "segment")


@dataclass(slots=True)
class Totals:
    """Sums of every measure over some set of buckets."""

    responses: int = 0
    nps: list[int] = field(default_factory=lambda: [0] * 11)
    csat: list[int] = field(default_factory=lambda: [0] * 5)
    ces: list[int] = field(default_factory=lambda: [0] * 7)
    sentiment_n: int = 0
    negative_n: int = 0
    sentiment_sum: float = 0.0
    sentiment_sumsq: float = 0.0

    @classmethod
    def from_row(cls, values: Sequence[float | None]) -> Totals:
        """Totals from measure values in `MEASURES` order (None read as zero)."""
        v = [0 if x is None else x for x in values]
        return cls(
            responses=int(v[0]),
            nps=[int(x) for x in v[1:12]],
            csat=[int(x) for x in v[12:17]],
            ces=[int(x) for x in v[17:24]],
            sentiment_n=int(v[24]),
            negative_n=int(v[25]),
            sentiment_sum=float(v[26]),
            sentiment_sumsq=float(v[27]),
        )

    def add(self, other: Totals) -> None:
        """Add `other` into these totals."""
        self.responses += other.responses
        for mine, theirs in ((self.nps, other.nps), (self.csat, other.csat), (self.ces, other.ces)):
            for i, count in enumerate(theirs):
                mine[i] += count
        self.sentiment_n += other.sentiment_n
        self.negative_n += other.negative_n
        self.sentiment_sum += other.sentiment_sum
        self.sentiment_sumsq += other.sentiment_sumsq

    @classmethod
    def merged(cls, parts: Iterable[Totals]) -> Totals:
        """The sum of several totals."""
        total = cls()
        for part in parts:
            total.add(part)
        return total

"""Bounded Prometheus label values."""

from __future__ import annotations

OTHER = "other"


class LabelLimiter:
    """Admits the first `limit` distinct values of a label; every later value reads "other".

    Keeps a label's cardinality bounded whatever the data holds (new touchpoints, typos).
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._admitted: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._admitted:
            return value
        if len(self._admitted) < self._limit:
            self._admitted.add(value)
            return value
        return OTHER

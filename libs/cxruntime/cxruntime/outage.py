"""How a loop behaves while what it depends on is down: wait longer after each failure, and say
so in the log once rather than once a try. Pure: the caller passes the time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Report = Literal["first", "reminder"]


@dataclass
class PassBackoff:
    """The wait before the next pass after consecutive failures: `base_s`, doubling each
    failure up to `max_s`; a success starts again from `base_s`."""

    base_s: float
    max_s: float
    failures: int = 0

    def failure(self) -> float:
        """Count a failed pass; returns the seconds to wait before the next one."""
        self.failures += 1
        # The exponent is capped so a long outage never overflows the float.
        return min(self.max_s, self.base_s * 2.0 ** min(self.failures - 1, 60))

    def success(self) -> None:
        """A pass worked: the next failure waits `base_s` again."""
        self.failures = 0


@dataclass
class OutageLog:
    """What to log about failures that several loops share (one database): the first failure
    of an outage in full, then a reminder at most every `remind_every_s`, and its end once."""

    remind_every_s: float
    started_at: float | None = None
    reported_at: float = 0.0
    failures: int = 0

    def failure(self, now: float) -> Report | None:
        """Count a failure at monotonic time `now`; returns what to log, if anything."""
        self.failures += 1
        if self.started_at is None:
            self.started_at = self.reported_at = now
            return "first"
        if now - self.reported_at >= self.remind_every_s:
            self.reported_at = now
            return "reminder"
        return None

    def success(self, now: float) -> tuple[float, int] | None:
        """A pass worked; returns (seconds, failures) of the outage it ends, if one."""
        if self.started_at is None:
            return None
        ended = (now - self.started_at, self.failures)
        self.started_at = None
        self.failures = 0
        return ended

    @property
    def ongoing(self) -> bool:
        """Whether the last pass failed."""
        return self.started_at is not None

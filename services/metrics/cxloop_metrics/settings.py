"""Configuration of the metrics service (`CX_METRICS_*` plus the common `CX_*` variables)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator

from cxruntime.settings import CommonSettings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """Accept `7d`, `12h`, `90m`, `30s`, `2w` besides what pydantic takes (seconds, ISO 8601)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


class MetricsSettings(CommonSettings):
    """Settings of `cxloop metrics`; KPI thresholds and Prometheus labels live in `kpis.yaml`."""

    metrics_port: int = 8002
    metrics_timezone: str = "Europe/Berlin"
    metrics_min_sample: int = 30
    metrics_lateness: timedelta = timedelta(days=7)
    metrics_hour_retention: timedelta = timedelta(days=35)
    metrics_dedup_retention: timedelta = timedelta(days=30)
    metrics_gauge_refresh: timedelta = timedelta(seconds=30)
    metrics_prune_interval: timedelta = timedelta(minutes=10)
    metrics_max_batch: int = 1000
    """Records per consumer batch. The runner decodes a batch without yielding the event loop
    the HTTP API shares, so this bounds how long a request can wait during ingest."""
    metrics_write_batch: int = 5000
    """Most events per transaction: batches that arrive while the writer is busy are merged
    into its next transaction. Larger transactions write fewer bucket rows per event (the
    small cubes' rows are shared by many events): PostgreSQL's CPU per event measured 60 us
    at 1,000 and 47 us at 5,000 (benchmarks/metrics.py)."""
    metrics_group_id: str = "cxloop-metrics"
    metrics_session_timeout_ms: int = 10_000
    """How soon the group notices a killed consumer and hands its partitions on."""

    @field_validator(
        "metrics_lateness",
        "metrics_hour_retention",
        "metrics_dedup_retention",
        "metrics_gauge_refresh",
        "metrics_prune_interval",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("metrics_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("metrics_min_sample", "metrics_max_batch", "metrics_write_batch")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The reporting time zone."""
        return ZoneInfo(self.metrics_timezone)

    @property
    def minute_retention(self) -> timedelta:
        """How long minute buckets are kept: the lateness plus a day of margin."""
        return self.metrics_lateness + timedelta(days=1)

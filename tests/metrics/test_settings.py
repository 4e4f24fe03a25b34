"""Metrics settings from the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from cxloop_metrics.settings import MetricsSettings


def test_defaults_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    s = MetricsSettings()
    assert (s.metrics_port, s.metrics_timezone, s.metrics_min_sample) == (8002, "Europe/Berlin", 30)
    assert s.metrics_lateness == timedelta(days=7)
    assert s.minute_retention == timedelta(days=8)
    monkeypatch.setenv("CX_METRICS_PORT", "9102")
    monkeypatch.setenv("CX_METRICS_LATENESS", "36h")
    monkeypatch.setenv("CX_METRICS_TIMEZONE", "America/New_York")
    monkeypatch.setenv("CX_METRICS_MIN_SAMPLE", "50")
    s = MetricsSettings()
    assert s.metrics_port == 9102
    assert s.metrics_lateness == timedelta(hours=36)
    assert s.tz.key == "America/New_York"
    assert s.metrics_min_sample == 50


def test_rejects_unknown_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_METRICS_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        MetricsSettings()

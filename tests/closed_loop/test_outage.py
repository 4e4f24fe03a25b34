"""The relay during a database outage: backoff between failing passes, one traceback an
outage, a line when it ends."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import httpx
import pytest

from cxloop_closed_loop.clock import SystemClock
from cxloop_closed_loop.config import parse_config
from cxloop_closed_loop.relay import Relay
from cxloop_closed_loop.settings import ClosedLoopSettings
from cxruntime.outage import OutageLog, PassBackoff


def test_backoff_doubles_up_to_the_cap_and_a_success_resets_it() -> None:
    backoff = PassBackoff(base_s=0.5, max_s=30.0)
    assert [backoff.failure() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.success()
    assert backoff.failure() == 0.5


def test_backoff_of_a_long_outage_stays_at_the_cap() -> None:
    backoff = PassBackoff(base_s=0.5, max_s=30.0)
    for _ in range(5000):
        delay = backoff.failure()
    assert delay == 30.0


def test_outage_log_reports_the_first_failure_then_reminders_then_the_end() -> None:
    outage = OutageLog(remind_every_s=60)
    assert outage.success(0.0) is None  # nothing to recover from
    assert outage.failure(100.0) == "first"
    assert [outage.failure(100.0 + t) for t in (0.5, 1, 30, 59.9)] == [None] * 4
    assert outage.failure(160.0) == "reminder"
    assert outage.failure(170.0) is None
    assert outage.failure(220.0) == "reminder"
    assert outage.ongoing
    assert outage.success(230.0) == (130.0, 8)
    assert not outage.ongoing
    assert outage.failure(300.0) == "first"  # a new outage


async def test_a_failing_database_is_retried_with_backoff_and_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ClosedLoopSettings(
        closed_loop_relay_interval_s=0.02,
        closed_loop_relay_backoff_max_s=0.16,
        closed_loop_relay_workers=2,
    )
    async with httpx.AsyncClient() as client:
        relay = Relay(
            sessions=cast(Any, None),
            config=lambda: parse_config({"teams": [{"name": "t"}], "triage": {"team": "t"}}),
            settings=settings,
            clock=SystemClock(),
            client=client,
        )
        passes = 0
        down = True

        async def deliver_due() -> int:
            nonlocal passes
            passes += 1
            if down:
                raise OSError("connection refused")
            return 0

        monkeypatch.setattr(relay, "deliver_due", deliver_due)
        with caplog.at_level(logging.INFO, logger="cxloop_closed_loop.relay"):
            task = asyncio.create_task(relay.run())
            await asyncio.sleep(1.0)
            failed = passes
            relay.wake()  # a wake does not cut a backoff short
            down = False
            await asyncio.sleep(0.4)
            relay.stop()
            await asyncio.wait_for(task, timeout=2)
    # Without backoff: 2 loops x 1 s / 0.02 s = 100 passes. With it, per loop: 0.02, 0.04,
    # 0.08, then 0.16 each: about 8 passes a loop.
    assert 4 <= failed <= 24, failed
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "connection refused" in str(tracebacks[0].exc_info)
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []
    recovered = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(recovered) == 1
    assert recovered[0].startswith("relay passes work again after ")
    assert passes > failed  # it did come back

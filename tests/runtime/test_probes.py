"""Readiness probes: failures, hangs and the one-second cache."""

from __future__ import annotations

import asyncio

from cxruntime.probes import CachedProbe


class Scripted(CachedProbe):
    def __init__(self, outcomes: list[str], **kwargs: float) -> None:
        super().__init__(**kwargs)
        self.outcomes = outcomes
        self.calls = 0

    async def check(self) -> None:
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if outcome == "fail":
            raise OSError("connection refused")
        if outcome == "hang":
            await asyncio.sleep(10)


async def test_ok_failure_and_hang_within_the_timeout() -> None:
    assert await Scripted(["ok"])() is True
    assert await Scripted(["fail"])() is False
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await Scripted(["hang"], timeout_s=0.1)() is False
    assert loop.time() - started < 1.0


async def test_answers_are_cached() -> None:
    probe = Scripted(["fail", "ok"], cache_s=0.2)
    assert await probe() is False
    assert await probe() is False
    assert probe.calls == 1
    await asyncio.sleep(0.25)
    assert await probe() is True
    assert probe.calls == 2

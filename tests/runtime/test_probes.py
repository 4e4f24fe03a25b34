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


def test_wait_for_http_reports_an_exited_process_and_a_timeout() -> None:
    import subprocess
    import sys

    import pytest

    from cxruntime.embedded import free_port
    from cxruntime.probes import ProcessExited, wait_for_http

    url = f"http://127.0.0.1:{free_port()}/readyz"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(ProcessExited):
        wait_for_http(url, process=gone, timeout_s=5)
    with pytest.raises(TimeoutError):
        wait_for_http(url, timeout_s=0.3, interval_s=0.05)


def test_wait_for_http_returns_once_the_status_is_accepted() -> None:
    import http.server
    import threading

    from cxruntime.probes import wait_for_http

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503 if self.path == "/readyz" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        wait_for_http(f"{base}/docs", timeout_s=5)
        wait_for_http(f"{base}/readyz", accept=lambda status: status == 503, timeout_s=5)
    finally:
        server.shutdown()
        server.server_close()

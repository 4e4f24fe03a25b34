"""`cxloop up` watches its embedded servers: a killed broker or PostgreSQL comes back on the
same address (the broker empty, which is logged as an error), and Ctrl-C still stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from cxruntime.embedded import free_port, port_open
from cxruntime.state import read_state
from tests.serverdirs import server_dir

UP_WITHOUT_SERVICES = """
import logging, sys
from cxruntime.settings import CommonSettings
from cxruntime.supervisor import Supervisor
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
sys.exit(Supervisor(CommonSettings(), services=()).run())
"""


class Up:
    """The supervisor of `cxloop up` (without services) in a subprocess, its output collected."""

    def __init__(self, data_dir: Path, kafka_port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CX_")}
        env |= {"CX_DATA_DIR": str(data_dir), "CX_EMBEDDED_KAFKA_PORT": str(kafka_port)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", UP_WITHOUT_SERVICES],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError("\n".join(self.output[-40:]))
            time.sleep(0.1)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.output)


@pytest.fixture
def up() -> Iterator[tuple[Up, Path, int]]:
    with server_dir("cxloop-test-up-") as data_dir:
        port = free_port()
        running = Up(data_dir, port)
        try:
            yield running, data_dir, port
        finally:
            if running.process.poll() is None:
                running.process.kill()
                running.process.wait()


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_up_restarts_a_killed_broker_and_a_killed_database(up: tuple[Up, Path, int]) -> None:
    running, data_dir, port = up
    # Without services there is no banner: the state file, written just before the watch loop
    # starts, says it is up.
    running.wait_for(lambda: read_state(data_dir) is not None, timeout_s=45)
    brokers = [
        p for p in psutil.Process(running.process.pid).children() if p.name().startswith("tansu")
    ]
    assert len(brokers) == 1

    brokers[0].kill()
    running.wait_for(lambda: running.said("restarted embedded broker"))
    assert any(
        line.startswith("ERROR") and "not yet consumed are lost" in line for line in running.output
    )
    assert port_open("127.0.0.1", port)

    old = _postmaster_pid(data_dir)
    os.kill(old, signal.SIGKILL)
    running.wait_for(lambda: running.said("restarted embedded PostgreSQL"))
    new = _postmaster_pid(data_dir)
    assert new != old
    assert psutil.pid_exists(new)

    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=30) == 0
    assert not port_open("127.0.0.1", port)
    # pg_ctl stop waits for the server; its exit is reaped by init a moment later.
    deadline = time.monotonic() + 5
    while psutil.pid_exists(new) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(new)

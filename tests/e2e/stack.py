"""A running `cxloop up` in a subprocess, on free ports and a private data directory, plus a
webhook receiver: what a user gets from `make run`, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cxruntime.embedded import free_port
from cxruntime.services import SERVICES

WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes


@dataclass
class Received:
    """One request the webhook receiver got."""

    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every POST."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cxloop"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(
                        {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                    )
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class Stack:
    """`cxloop up` as a user runs it."""

    data_dir: Path
    webhook: WebhookReceiver
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    api_key: str = ""

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CX_")}
        env.update(
            {
                "CX_DATA_DIR": str(self.data_dir),
                "CX_EMBEDDED_KAFKA_PORT": str(self.ports["kafka"]),
                "CX_CLOSED_LOOP_WEBHOOK_URL": self.webhook.url,
                "CX_CLOSED_LOOP_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "CX_TOPIC_PARTITIONS": "3",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for service in SERVICES:
            env[service.port_variable] = str(self.ports[service.name])
        return env

    def start(self, timeout_s: float = 90) -> None:
        self.ports = {"kafka": free_port(), **{s.name: free_port() for s in SERVICES}}
        cxloop = str(Path(sys.executable).with_name("cxloop"))
        self.process = subprocess.Popen(
            [cxloop, "up"],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group, like a job in a terminal
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                if line.strip().startswith("Try:"):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout_s) or self.process.poll() is not None:
            raise RuntimeError("cxloop up did not come up:\n" + "\n".join(self.output[-80:]))
        keys = [line.strip() for line in self.output if line.strip().startswith("cxk_")]
        assert keys, "no development key printed:\n" + "\n".join(self.output)
        self.api_key = keys[-1]

    def children(self) -> dict[int, str]:
        """pid -> command line of every process `up` started (direct children)."""
        assert self.process is not None
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.process.pid:
                found[int(entry.name)] = cmdline
        return found

    def service_pid(self, name: str) -> int:
        for pid, cmdline in self.children().items():
            if cmdline.endswith(f"cxloop {name}"):
                return pid
        raise LookupError(f"no {name} process under cxloop up")

    def postgres_pid(self) -> int | None:
        pidfile = self.data_dir / "postgres" / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=timeout_s)


def alive(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

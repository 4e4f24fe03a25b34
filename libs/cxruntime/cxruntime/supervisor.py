"""`cxloop up`: the embedded servers and the four services on one machine.

Starts the embedded broker and PostgreSQL (each only when its URL is unset), creates the topics,
migrates the database, runs each service as its own process (`cxloop <service>`, as a container
would), restarts a service that dies, and on Ctrl-C or SIGTERM stops the services first (they
commit their final offsets), then the broker, then PostgreSQL, leaving no process behind.

The embedded servers are watched too and restarted with the same backoff as the services, on
the same address, so the services (which retry their connections) carry on by themselves:

- PostgreSQL keeps its data on disk, so a restart loses nothing committed.
- The broker keeps its topics in memory: a restart comes back empty (the topics are created
  again) and every record not yet consumed is lost, which is logged as an ERROR. The consumers
  lose their group's committed offsets with it and read the new logs from their start; a sink
  that stores its own positions finds them past the new logs' end and resets them to the
  start (`cxruntime.consumer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from cxruntime import apikeys
from cxruntime.db import make_engine, make_sessionmaker
from cxruntime.embedded import EmbeddedKafka, EmbeddedPostgres, die_with_parent
from cxruntime.kafka import ensure_topics, wait_for_kafka
from cxruntime.migrations import migrate
from cxruntime.services import SERVICES, ServiceInfo
from cxruntime.settings import CommonSettings
from cxruntime.state import DEV_KEY_FILE, EmbeddedState, read_state, remove_state, write_state

log = logging.getLogger("cxloop.up")

RESTART_BACKOFF_MAX_S = 30.0
STOP_TIMEOUT_S = 20.0
READY_TIMEOUT_S = 60.0


@dataclass
class _Child:
    service: ServiceInfo
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0


@dataclass
class _Watched:
    """An embedded server: how to tell it lives and how to start it again."""

    name: str
    alive: Callable[[], bool]
    restart: Callable[[], None]
    down: bool = False
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0


def _backoff(restarts: int) -> float:
    return min(RESTART_BACKOFF_MAX_S, 0.5 * 2.0**restarts)


def cxloop_command() -> list[str]:
    """How to run `cxloop` from here: the installed script beside this Python, else `-m`."""
    script = Path(sys.executable).with_name("cxloop")
    if script.is_file():
        return [str(script)]
    found = shutil.which("cxloop")
    if found:
        return [found]
    return [sys.executable, "-m", "cxruntime"]


def _display_command() -> str:
    """`cxloop` as the user can type it here: bare when on PATH, else relative to this folder."""
    command = cxloop_command()
    if len(command) > 1:
        return " ".join(command)
    path = Path(command[0])
    if shutil.which("cxloop") == str(path):
        return "cxloop"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Supervisor:
    """Runs everything `cxloop up` runs; `run()` returns the exit status."""

    def __init__(self, settings: CommonSettings, *, services: tuple[ServiceInfo, ...] = SERVICES):
        self.settings = settings
        self.services = services
        self.kafka: EmbeddedKafka | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.children = [_Child(s) for s in services]
        self.servers: list[_Watched] = []
        self._stop = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop:
            log.warning("second signal: stopping harder")
        self._stop = True

    def run(self) -> int:
        """Start everything, watch it, stop it all on a signal."""
        data_dir = self.settings.data_dir.resolve()
        running = read_state(data_dir)
        if running is not None:
            print(
                f"cxloop up is already running here (pid {running.pid}); stop it first",
                file=sys.stderr,
            )
            return 2
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            try:
                env = self._start_servers(data_dir)
            except Exception as exc:
                print(f"cxloop up: could not start: {exc}", file=sys.stderr)
                return 1
            if self._stop:
                return 0
            dev_key = self._dev_key(env["CX_DATABASE_URL"], data_dir)
            for child in self.children:
                self._spawn(child, env)
            write_state(
                data_dir,
                EmbeddedState(
                    pid=os.getpid(),
                    kafka_bootstrap=env["CX_KAFKA_BOOTSTRAP_SERVERS"],
                    database_url=env["CX_DATABASE_URL"],
                    services={c.service.name: self._url(c.service) for c in self.children},
                ),
            )
            self._watch(env, dev_key)
            return 0
        finally:
            self._shutdown(data_dir)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start_servers(self, data_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        settings = self.settings
        if settings.kafka_bootstrap_servers:
            bootstrap = settings.kafka_bootstrap_servers
        else:
            self.kafka = EmbeddedKafka(
                port=settings.embedded_kafka_port, log_path=data_dir / "logs" / "tansu.log"
            )
            bootstrap = self.kafka.start()
            log.info("embedded Kafka-protocol broker (Tansu) on %s", bootstrap)
        if settings.database_url is not None and settings.database_url.get_secret_value():
            dsn = settings.database_dsn()
        else:
            self.postgres = EmbeddedPostgres(data_dir / "postgres")
            dsn = self.postgres.start()
            log.info("embedded PostgreSQL in %s", data_dir / "postgres")
        asyncio.run(self._prepare_kafka(bootstrap))
        self._watch_servers(bootstrap)
        applied = migrate(dsn)
        log.info("database migrated (%s)", ", ".join(applied))
        env["CX_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        env["CX_DATABASE_URL"] = dsn
        env["CX_DATA_DIR"] = str(data_dir)
        return env

    async def _prepare_kafka(self, bootstrap: str) -> None:
        await wait_for_kafka(bootstrap, timeout_s=30)
        created = await ensure_topics(
            bootstrap,
            partitions=self.settings.topic_partitions,
            replication_factor=self.settings.topic_replication_factor,
        )
        if created:
            log.info("created topics %s", ", ".join(created))

    def _watch_servers(self, bootstrap: str) -> None:
        """Register the embedded servers started here for `_restart_servers`."""
        kafka, postgres = self.kafka, self.postgres
        now = time.monotonic()
        if kafka is not None:

            def restart_kafka() -> None:
                kafka.stop()
                kafka.start()  # the same port: the services' bootstrap stays valid
                asyncio.run(self._prepare_kafka(bootstrap))

            self.servers.append(_Watched("broker", kafka.running, restart_kafka, started_at=now))
        if postgres is not None:
            url = postgres.url()

            def restart_postgres() -> None:
                if postgres.restart() != url:
                    # The services were given the old URL; they could never reconnect.
                    raise RuntimeError(f"PostgreSQL came back at {postgres.url()}, not {url}")

            self.servers.append(
                _Watched("PostgreSQL", postgres.running, restart_postgres, started_at=now)
            )

    def _dev_key(self, dsn: str, data_dir: Path) -> str:
        """The development key kept in `<data dir>/dev-api-key`, made anew if gone or revoked."""
        path = data_dir / DEV_KEY_FILE

        async def ensure() -> str:
            engine = make_engine(dsn, pool_size=1, max_overflow=0)
            sessions = make_sessionmaker(engine)
            try:
                if path.is_file():
                    key = path.read_text().strip()
                    async with sessions() as session:
                        if await apikeys.authenticate(session, key) is not None:
                            return key
                async with sessions() as session, session.begin():
                    name = f"dev-{time.strftime('%Y%m%d-%H%M%S')}"
                    _, key = await apikeys.create_key(session, name=name, scopes=["admin"])
                path.write_text(key + "\n")
                path.chmod(0o600)
                return key
            finally:
                await engine.dispose()

        return asyncio.run(ensure())

    def _spawn(self, child: _Child, env: dict[str, str]) -> None:
        child.process = subprocess.Popen(
            [*cxloop_command(), child.service.name],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.service.name, child.process.pid)

    def _url(self, service: ServiceInfo) -> str:
        return f"http://127.0.0.1:{service.port()}"

    def _ready(self, client: httpx.Client, pending: set[str]) -> set[str]:
        """Which of the `pending` services are ready now: `/readyz` answers 200 and, for a
        consuming service, its consumer has joined its group (else the first events wait for
        the group to form)."""
        ready = set()
        for child in self.children:
            if child.service.name not in pending:
                continue
            url = self._url(child.service)
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}/readyz").status_code != 200:
                    continue
                if child.service.consumes:
                    exposition = client.get(f"{url}/metrics").text
                    if "cx_consumer_assigned_partitions{" not in exposition:
                        continue
                ready.add(child.service.name)
        return ready

    def _print_banner(self, env: dict[str, str], dev_key: str) -> None:
        lines = ["", "cxloop is up.", ""]
        for child in self.children:
            lines.append(f"  {child.service.name:<12} {self._url(child.service)}  (docs: /docs)")
        lines += [
            "",
            f"  Kafka bootstrap   {env['CX_KAFKA_BOOTSTRAP_SERVERS']}",
            f"  Database URL      {env['CX_DATABASE_URL']}",
            f"  Data directory    {env['CX_DATA_DIR']}",
            "",
            "  Development API key (all scopes; also in the data directory's dev-api-key):",
            f"  {dev_key}",
            "",
            f"  Try:  {_display_command()} demo     Stop: Ctrl-C",
            "",
        ]
        print("\n".join(lines), flush=True)

    def _watch(self, env: dict[str, str], dev_key: str) -> None:
        """Restart services that die; print the banner once all are ready (or after a minute)."""
        pending = {c.service.name for c in self.children}
        banner_deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=0.5) as client:
            while not self._stop:
                now = time.monotonic()
                for server in self.servers:
                    self._restart_server_if_dead(server, now)
                for child in self.children:
                    self._restart_if_dead(child, env, now)
                if pending:
                    pending -= self._ready(client, pending)
                    if not pending or now > banner_deadline:
                        if pending:
                            log.warning("not ready yet: %s", ", ".join(sorted(pending)))
                        self._print_banner(env, dev_key)
                        pending = set()
                time.sleep(0.2)

    def _restart_server_if_dead(self, server: _Watched, now: float) -> None:
        if not server.down:
            if server.alive():
                return
            uptime = now - server.started_at
            server.restarts = 0 if uptime > 60 else server.restarts + 1
            server.down = True
            server.next_start = now + _backoff(server.restarts)
            if server.name == "broker":
                log.error(
                    "the embedded broker died after %.1fs; restarting it in %.1fs with empty "
                    "topics: the records it held that were not yet consumed are lost",
                    uptime,
                    server.next_start - now,
                )
            else:
                log.error(
                    "embedded %s died after %.1fs; restarting it in %.1fs (its data is on disk)",
                    server.name,
                    uptime,
                    server.next_start - now,
                )
        if now < server.next_start:
            return
        try:
            server.restart()
        except Exception as exc:
            server.restarts += 1
            delay = _backoff(server.restarts)
            log.error("could not restart %s (%s); trying again in %.1fs", server.name, exc, delay)
            server.next_start = time.monotonic() + delay
            return
        server.down = False
        server.started_at = time.monotonic()
        log.warning("restarted embedded %s", server.name)

    def _restart_if_dead(self, child: _Child, env: dict[str, str], now: float) -> None:
        proc = child.process
        if proc is not None and proc.poll() is not None:
            uptime = now - child.started_at
            child.restarts = 0 if uptime > 60 else child.restarts + 1
            delay = _backoff(child.restarts)
            log.warning(
                "%s exited with %s after %.1fs; restarting in %.1fs",
                child.service.name,
                proc.returncode,
                uptime,
                delay,
            )
            child.process = None
            child.next_start = now + delay
        if child.process is None and now >= child.next_start:
            self._spawn(child, env)

    def _shutdown(self, data_dir: Path) -> None:
        live = [
            c.process for c in self.children if c.process is not None and c.process.poll() is None
        ]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.wait()
        if self.kafka is not None:
            self.kafka.stop()
            self.kafka = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        remove_state(data_dir)
        log.info("stopped")

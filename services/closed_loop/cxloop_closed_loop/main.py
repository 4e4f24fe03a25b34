"""`cxloop closed-loop`: the case API, the Kafka consumer, the outbox relay and the SLA worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from cxloop_closed_loop.api import ClosedLoopState, deliveries_router, router
from cxloop_closed_loop.clock import Clock, SystemClock
from cxloop_closed_loop.config import load_config
from cxloop_closed_loop.holder import ConfigHolder
from cxloop_closed_loop.processor import CaseProcessor
from cxloop_closed_loop.relay import Relay
from cxloop_closed_loop.settings import ClosedLoopSettings
from cxloop_closed_loop.timers import SlaWorker
from cxruntime.auth import Authenticator
from cxruntime.consumer import ConsumerRunner, RunnerConfig
from cxruntime.db import DatabaseProbe, make_engine, make_sessionmaker
from cxruntime.kafka import KafkaProbe, make_producer
from cxruntime.logs import configure_logging
from cxruntime.ops import NO_OPENTELEMETRY, ReadinessCheck, add_routes, ops_router
from cxruntime.problems import install_problem_handlers
from cxruntime.serve import Worker, serve
from cxschema import ENRICHED

log = logging.getLogger(__name__)


@dataclass
class Running:
    """The workers the lifespan built, run beside the HTTP server."""

    runner: ConsumerRunner[object]
    relay: Relay
    sla: SlaWorker
    checks: dict[str, ReadinessCheck]

    def workers(self) -> Sequence[Worker]:
        """All background loops."""
        return [self.runner, self.relay, self.sla]


def create_app(settings: ClosedLoopSettings, *, clock: Clock | None = None) -> FastAPI:
    """The closed-loop app; its lifespan connects to PostgreSQL and Kafka and builds workers."""
    the_clock: Clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder = ConfigHolder(lambda: load_config(settings))
        engine = make_engine(settings.database_dsn())
        sessions = make_sessionmaker(engine)
        bootstrap = settings.kafka_bootstrap()
        producer = make_producer(bootstrap, client_id="cxloop-closed-loop")
        await producer.start()
        client = httpx.AsyncClient(
            timeout=settings.closed_loop_delivery_timeout_s,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
            follow_redirects=False,
        )
        relay = Relay(
            sessions=sessions, config=holder, settings=settings, clock=the_clock, client=client
        )
        processor = CaseProcessor(
            sessions=sessions, config=holder, clock=the_clock, on_committed=relay.wake
        )
        runner: ConsumerRunner[object] = ConsumerRunner(
            RunnerConfig(
                bootstrap=bootstrap,
                group_id=settings.closed_loop_group_id,
                topics=(ENRICHED,),
                stage="closed_loop",
                client_id="cxloop-closed-loop",
                poll_timeout_ms=100,
                max_batch=settings.closed_loop_max_batch,
            ),
            processor,  # type: ignore[arg-type]
            producer,
        )
        sla = SlaWorker(
            sessions=sessions,
            config=holder,
            clock=the_clock,
            interval_s=settings.closed_loop_timer_interval_s,
            on_fired=relay.wake,
        )
        app.state.authenticator = Authenticator(sessions)
        app.state.closed_loop = ClosedLoopState(
            sessions=sessions, config=holder, clock=the_clock, wake_relay=relay.wake
        )
        app.state.running = Running(
            runner=runner,
            relay=relay,
            sla=sla,
            checks={"kafka": KafkaProbe(producer), "database": DatabaseProbe(engine)},
        )
        loop_signals = False
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, holder.reload)
            loop_signals = True
        try:
            yield
        finally:
            if loop_signals:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            await client.aclose()
            await producer.stop()
            await engine.dispose()

    app = FastAPI(
        title="cxloop closed loop",
        version="0.1.0",
        summary="Cases from unhappy customers, routed, tracked against SLAs and notified.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    install_problem_handlers(app)

    def checks() -> dict[str, ReadinessCheck]:
        running = getattr(app.state, "running", None)
        return dict(running.checks) if isinstance(running, Running) else {}

    add_routes(app, ops_router(checks), router, deliveries_router)
    return app


def run() -> int:
    """Entry point of `cxloop closed-loop`."""
    settings = ClosedLoopSettings()
    configure_logging("closed-loop", settings.log_level)
    load_config(settings)  # fail fast, before binding the port, on a broken routing.yaml
    app = create_app(settings)

    def workers() -> Sequence[Worker]:
        running = app.state.running
        assert isinstance(running, Running)
        return running.workers()

    return serve(app, host=settings.host, port=settings.closed_loop_port, workers=workers)

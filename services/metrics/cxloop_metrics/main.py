"""Entry point of `cxloop metrics`: the KPI API, the consumer and the background loops."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cxloop_metrics import api
from cxloop_metrics.config import load_kpi_config
from cxloop_metrics.labels import LabelLimiter
from cxloop_metrics.processor import MetricsProcessor
from cxloop_metrics.reports import ReportContext
from cxloop_metrics.repository import claim_setting
from cxloop_metrics.settings import MetricsSettings
from cxloop_metrics.workers import GaugeRefresher, Pruner
from cxruntime.auth import Authenticator
from cxruntime.consumer import ConsumerRunner, RunnerConfig
from cxruntime.db import DatabaseProbe, make_engine, make_sessionmaker
from cxruntime.errors import ConfigurationError
from cxruntime.kafka import KafkaProbe, make_producer
from cxruntime.logs import configure_logging
from cxruntime.ops import NO_OPENTELEMETRY, ReadinessCheck, add_routes, ops_router
from cxruntime.problems import install_problem_handlers
from cxruntime.serve import Worker, serve
from cxschema import ENRICHED

log = logging.getLogger(__name__)


def create_app(settings: MetricsSettings) -> FastAPI:
    """The metrics app; its lifespan builds the engine, producer and consumer."""
    config = load_kpi_config(settings.config_dir)
    ctx = ReportContext(
        config=config,
        tz=settings.tz,
        timezone=settings.metrics_timezone,
        min_sample=settings.metrics_min_sample,
        lateness=settings.metrics_lateness,
        hour_retention=settings.metrics_hour_retention,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn = settings.database_dsn()
        engine = make_engine(dsn)
        sessions = make_sessionmaker(engine)
        bootstrap = settings.kafka_bootstrap()
        producer = make_producer(bootstrap, client_id="cxloop-metrics")
        try:
            async with sessions() as session, session.begin():
                stored_tz = await claim_setting(session, "timezone", settings.metrics_timezone)
            if stored_tz != settings.metrics_timezone:
                raise ConfigurationError(
                    f"the stored buckets are in {stored_tz}, but CX_METRICS_TIMEZONE is "
                    f"{settings.metrics_timezone}; hour and day buckets cannot change zone"
                )
            await producer.start()
            processor = MetricsProcessor(
                sessions,
                tz=settings.tz,
                lateness=settings.metrics_lateness,
                hour_retention=settings.metrics_hour_retention,
                touchpoint_labels=LabelLimiter(config.prometheus.max_touchpoints),
                writer_dsn=dsn,
                max_write=settings.metrics_write_batch,
            )
            runner = ConsumerRunner(
                RunnerConfig(
                    bootstrap=bootstrap,
                    group_id=settings.metrics_group_id,
                    topics=(ENRICHED,),
                    stage="metrics",
                    client_id="cxloop-metrics",
                    max_batch=settings.metrics_max_batch,
                    session_timeout_ms=settings.metrics_session_timeout_ms,
                    heartbeat_interval_ms=max(100, settings.metrics_session_timeout_ms // 5),
                ),
                processor,
                producer,
                offset_store=processor,
            )
            app.state.sessions = sessions
            app.state.authenticator = Authenticator(sessions)
            app.state.report_context = ctx
            app.state.checks = {"kafka": KafkaProbe(producer), "database": DatabaseProbe(engine)}
            app.state.workers = [
                runner,
                processor,
                GaugeRefresher(sessions, ctx, settings.metrics_gauge_refresh),
                Pruner(
                    sessions,
                    every=settings.metrics_prune_interval,
                    minute_retention=settings.minute_retention,
                    hour_retention=settings.metrics_hour_retention,
                    dedup_retention=settings.metrics_dedup_retention,
                ),
            ]
            yield
        finally:
            await producer.stop()
            await engine.dispose()

    app = FastAPI(
        title="cxloop metrics",
        version="0.1.0",
        summary="Rolling Voice-of-the-Customer KPIs, each event counted exactly once.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    app.state.checks = {}
    app.state.workers = []
    install_problem_handlers(app)
    api.install_report_error_handler(app)

    def checks() -> dict[str, ReadinessCheck]:
        return dict(app.state.checks)

    add_routes(app, ops_router(checks), api.router)
    return app


def run() -> int:
    """`cxloop metrics`: serve the API and consume until SIGTERM."""
    settings = MetricsSettings()
    configure_logging("metrics", settings.log_level)
    app = create_app(settings)

    def workers() -> Sequence[Worker]:
        return list(app.state.workers)

    return serve(app, host=settings.host, port=settings.metrics_port, workers=workers)

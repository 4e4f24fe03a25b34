"""The collector process: `cxloop collector` runs `run()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from cxloop_collector import api, channels_api
from cxloop_collector.cors import OriginAllowList
from cxloop_collector.gate import Gate
from cxloop_collector.keys import CoalescingAuthenticator
from cxloop_collector.openapi import install_openapi
from cxloop_collector.publisher import Publisher
from cxloop_collector.ratelimit import RateLimiter
from cxloop_collector.rating import RatingSigner, load_secret
from cxloop_collector.settings import CollectorSettings
from cxloop_collector.timing import IngestMiddleware
from cxruntime.db import DatabaseProbe, make_engine, make_sessionmaker
from cxruntime.kafka import KafkaProbe, make_producer
from cxruntime.logs import configure_logging
from cxruntime.ops import NO_OPENTELEMETRY, ReadinessCheck, add_routes, ops_router
from cxruntime.problems import install_problem_handlers
from cxruntime.serve import serve

log = logging.getLogger(__name__)


async def _connect(settings: CollectorSettings, publisher: Publisher) -> AIOKafkaProducer:
    """Start a producer, retrying until the broker answers; hand it to the publisher."""
    bootstrap = settings.kafka_bootstrap()
    delay = 0.2
    while True:
        producer = make_producer(
            bootstrap, client_id="cxloop-collector", linger_ms=settings.collector_linger_ms
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            log.warning("Kafka at %s not reachable yet (%r); retrying", bootstrap, exc)
            with contextlib.suppress(Exception):
                await producer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        publisher.attach(
            producer,
            linger_s=settings.collector_linger_ms / 1000,
            group_commit=settings.collector_group_commit,
        )
        log.info("producing to Kafka at %s", bootstrap)
        return producer


def create_app(settings: CollectorSettings) -> FastAPI:
    """The collector's FastAPI app; clients are built in its lifespan."""
    checks: dict[str, ReadinessCheck] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_dsn(), pool_size=5, max_overflow=5)
        sessions = make_sessionmaker(engine)
        app.state.sessions = sessions
        app.state.csv_zone = ZoneInfo(settings.collector_csv_timezone)
        secret = settings.collector_rating_secret
        app.state.rating_signer = RatingSigner(
            load_secret(secret.get_secret_value() if secret else None, settings.data_dir)
        )
        app.state.origins = OriginAllowList(sessions, ttl_s=settings.collector_auth_cache_s)
        authenticator = CoalescingAuthenticator(sessions, ttl_s=settings.collector_auth_cache_s)
        app.state.authenticator = authenticator
        publisher = Publisher(
            timeout_s=settings.collector_produce_timeout_s,
            max_in_flight=settings.collector_max_in_flight,
            memo_size=settings.collector_dedup_memo_size,
        )
        app.state.gate = Gate(
            publisher=publisher,
            limiter=RateLimiter(
                rate_per_s=settings.collector_rate_limit_per_s,
                burst=settings.rate_limit_burst(),
                report=settings.collector_rate_limit_headers,
            ),
            authenticator=authenticator,
        )
        connecting = asyncio.create_task(_connect(settings, publisher), name="kafka-connect")
        db_probe = DatabaseProbe(engine)

        kafka_probe: KafkaProbe | None = None

        def on_connected(task: asyncio.Task[AIOKafkaProducer]) -> None:
            nonlocal kafka_probe
            if not task.cancelled() and task.exception() is None:
                kafka_probe = KafkaProbe(task.result())

        connecting.add_done_callback(on_connected)

        async def kafka_check() -> bool:
            return kafka_probe is not None and await kafka_probe()

        checks["kafka"] = kafka_check
        checks["database"] = db_probe
        try:
            yield
        finally:
            checks.clear()
            if connecting.done() and not connecting.cancelled() and not connecting.exception():
                producer = connecting.result()
                await publisher.close()
                try:
                    await asyncio.wait_for(producer.stop(), timeout=10)
                except (TimeoutError, KafkaError):
                    log.warning("the producer did not flush within 10 s")
            else:
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connecting
            await engine.dispose()

    def current_checks() -> Mapping[str, ReadinessCheck]:
        return checks

    app = FastAPI(
        title="cxloop collector",
        version="1.0",
        summary="Feedback ingestion: native JSON, CloudEvents, e-mail and contact-centre.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    install_problem_handlers(app)
    # The ingest routes first: routes are matched in order, on every request.
    add_routes(app, api.router, channels_api.router, ops_router(current_checks))
    install_openapi(app)
    app.add_middleware(IngestMiddleware)
    return app


def run() -> int:
    """Entry point of `cxloop collector`."""
    settings = CollectorSettings()
    configure_logging("collector", settings.log_level)
    settings.kafka_bootstrap()
    settings.database_dsn()
    return serve(create_app(settings), host=settings.host, port=settings.collector_port)

"""`cxloop enricher`: the enrichment consumer plus its operations endpoints on one port.

The enricher has no API of its own and no database: it serves `/healthz`, `/readyz` (503 while
Kafka is unreachable) and `/metrics`, and runs one consumer in the group `cxloop-enricher`
(several processes share the partitions).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cxloop_enricher.enrich import Enricher
from cxloop_enricher.language import detect_language, warm_up
from cxloop_enricher.pii import configured_redactor
from cxloop_enricher.processor import EnrichProcessor
from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.settings import EnricherSettings, load_settings
from cxloop_enricher.taxonomy import load_taxonomy
from cxloop_enricher.touchpoints import TouchpointTagger
from cxruntime.consumer import ConsumerRunner, RunnerConfig
from cxruntime.errors import ConfigurationError
from cxruntime.kafka import KafkaProbe, make_producer, wait_for_kafka
from cxruntime.logs import configure_logging
from cxruntime.ops import NO_OPENTELEMETRY, ReadinessCheck, add_routes, ops_router
from cxruntime.serve import Worker, serve
from cxschema import RAW

log = logging.getLogger(__name__)

STAGE = "enricher"


def load_analyzer(settings: EnricherSettings) -> SentimentAnalyzer:
    """The trained model of `CX_ENRICHER_SENTIMENT_MODEL`, else the shipped tagger."""
    path = settings.enricher_sentiment_model
    if path is None:
        return SentimentAnalyzer.default()
    try:
        analyzer = SentimentAnalyzer.load(path)
        # A model with sentence embeddings loads its encoder now (about a second), so that a
        # broken install stops the start-up and the first batch does not wait for it.
        analyzer.prepare(["Start."])
        return analyzer
    except Exception as exc:  # the model loader's errors are many (I/O, format, version)
        raise ConfigurationError(
            f"CX_ENRICHER_SENTIMENT_MODEL={path}: cannot load the sentiment model: {exc}"
        ) from exc


def describe_sentiment(settings: EnricherSettings, analyzer: SentimentAnalyzer) -> str:
    """Which sentiment tagger runs, for the start-up log line."""
    model = analyzer.model
    if model is None:
        return "shipped tagger"
    parts = [f"model {settings.enricher_sentiment_model}", "labels " + "/".join(model.classes)]
    if model.config.embedding:
        parts.append(f"sentence encoder {model.config.embedding}")
    return ", ".join(parts)


def build_enricher(settings: EnricherSettings) -> Enricher:
    """Load and validate the taxonomy, PII patterns and sentiment model; fail fast if wrong."""
    taxonomy = load_taxonomy(settings.config_dir)
    return Enricher(
        tagger=TouchpointTagger(taxonomy),
        redactor=configured_redactor(taxonomy, settings),
        analyzer=load_analyzer(settings),
        detect_language=detect_language,
    )


def runner_config(settings: EnricherSettings, bootstrap: str) -> RunnerConfig:
    """How the enricher consumes `cx.feedback.raw.v1`."""
    return RunnerConfig(
        bootstrap=bootstrap,
        group_id=settings.enricher_group_id,
        topics=(RAW,),
        stage=STAGE,
        client_id="cxloop-enricher",
        max_batch=settings.enricher_max_batch,
        max_invalid_ratio=settings.enricher_max_invalid_ratio,
    )


def create_app(settings: EnricherSettings, enricher: Enricher | None = None) -> FastAPI:
    """The enricher's app; its lifespan starts the producer the consumer writes with."""
    bootstrap = settings.kafka_bootstrap()
    enricher = enricher or build_enricher(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await wait_for_kafka(bootstrap, timeout_s=60)
        producer = make_producer(bootstrap, client_id="cxloop-enricher", linger_ms=5)
        await producer.start()
        app.state.producer = producer
        app.state.kafka_probe = KafkaProbe(producer)
        try:
            yield
        finally:
            app.state.kafka_probe = None
            await producer.stop()

    app = FastAPI(
        title="cxloop enricher",
        version="0.1.0",
        summary="Touchpoint, language, sentiment and PII redaction for feedback events.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    app.state.kafka_probe = None
    app.state.enricher = enricher
    app.state.runner_config = runner_config(settings, bootstrap)

    def checks() -> dict[str, ReadinessCheck]:
        probe: KafkaProbe | None = app.state.kafka_probe
        return {} if probe is None else {"kafka": probe}

    add_routes(app, ops_router(checks))
    return app


def workers(app: FastAPI) -> Sequence[Worker]:
    """The consumer, built once the lifespan started the producer."""
    runner = ConsumerRunner(
        app.state.runner_config, EnrichProcessor(app.state.enricher), app.state.producer
    )
    return [runner]


def run() -> int:
    """Entry point of `cxloop enricher`; returns the exit status."""
    settings = load_settings()
    configure_logging("enricher", settings.log_level)
    app = create_app(settings)
    warm_up()
    log.info(
        "enricher on %s:%d (taxonomy %d touchpoints, %d rules; sentiment: %s)",
        settings.host,
        settings.enricher_port,
        len(app.state.enricher.tagger.taxonomy.touchpoints),
        len(app.state.enricher.tagger.taxonomy.rules),
        describe_sentiment(settings, app.state.enricher.analyzer),
    )
    return serve(app, host=settings.host, port=settings.enricher_port, workers=lambda: workers(app))

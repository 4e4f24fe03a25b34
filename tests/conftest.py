"""Fixtures shared by the whole suite: a real PostgreSQL per test session and a real
Kafka-protocol broker per test, both the embedded servers `cxloop up` runs."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cxruntime.db import make_engine, make_sessionmaker
from cxruntime.embedded import EmbeddedKafka, EmbeddedPostgres
from cxruntime.kafka import ensure_topics
from cxruntime.migrations import migrate
from tests.serverdirs import server_dir

TEMPLATE_DB = "cxloop_template"


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    """One embedded PostgreSQL for the session, with a migrated template database."""
    with server_dir("cxloop-test-pg-") as folder:
        server = EmbeddedPostgres(folder / "data")
        server.start()
        try:
            migrate(server.create_database(TEMPLATE_DB))
            yield server
        finally:
            server.stop()


@pytest.fixture
def database_url(postgres: EmbeddedPostgres, request: pytest.FixtureRequest) -> str:
    """A fresh, fully migrated database for one test (copied from the template)."""
    name = "t_" + re.sub(r"\W", "_", request.node.name)[:40].lower() + f"_{os.getpid()}"
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')
    postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}";')
    return postgres.url(name)


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database."""
    engine = make_engine(database_url, pool_size=5)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def db_sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the test's database."""
    return make_sessionmaker(db_engine)


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A fresh embedded broker for one test, with the cxloop topics (3 partitions each)."""
    broker = EmbeddedKafka(log_path=tmp_path / "tansu.log")
    broker.start()
    asyncio.run(ensure_topics(broker.bootstrap, partitions=3))
    try:
        yield broker
    finally:
        broker.stop()

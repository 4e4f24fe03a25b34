"""Fixtures of the collector tests: the app with its lifespan on the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxruntime import apikeys
from cxruntime.embedded import EmbeddedKafka
from tests.collector.helpers import Collector, KeyMaker, collector_settings, start_collector


@pytest.fixture
def make_key(db_sessions: async_sessionmaker[AsyncSession]) -> KeyMaker:
    """Create an API key in the test database; returns the secret."""

    async def make(
        name: str = "web-shop",
        scopes: Sequence[str] = ("ingest",),
        channels: Sequence[str] = (),
        origins: Sequence[str] = (),
        publishable: bool = False,
    ) -> str:
        async with db_sessions() as session, session.begin():
            _, secret = await apikeys.create_key(
                session,
                name=name,
                scopes=scopes,
                channels=channels,
                origins=origins,
                publishable=publishable,
            )
        return secret

    return make


@pytest.fixture
async def collector(
    kafka: EmbeddedKafka, database_url: str, tmp_path: Path
) -> AsyncIterator[Collector]:
    """A collector on the test's broker and database."""
    async for running in start_collector(collector_settings(kafka, database_url, tmp_path)):
        yield running

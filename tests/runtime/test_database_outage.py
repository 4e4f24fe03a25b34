"""An unreachable database: keys verified recently keep working (stale-if-error), other keys
and database-backed endpoints answer 503 problems with `Retry-After`, logged once per outage."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cxruntime import apikeys
from cxruntime.auth import STALE_IF_ERROR_S, Authenticator, IngestKey
from cxruntime.db import make_engine, make_sessionmaker
from cxruntime.embedded import free_port
from cxruntime.problems import Problem, install_problem_handlers

UNKNOWN_KEY = "cxk_0123456789abcdef_" + "s" * 43


@pytest.fixture
async def dead_engine() -> AsyncIterator[AsyncEngine]:
    """An engine on a port nothing listens on: every connection attempt is refused."""
    engine = make_engine(f"postgresql+asyncpg://cx:cx@127.0.0.1:{free_port()}/cx", pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _key(sessions: async_sessionmaker[AsyncSession], name: str) -> str:
    async with sessions() as session, session.begin():
        _, secret = await apikeys.create_key(session, name=name, scopes=["ingest"])
    return secret


def test_the_grace_period_is_longer_than_a_restart() -> None:
    assert STALE_IF_ERROR_S >= 300


@pytest.mark.integration
async def test_a_recently_verified_key_survives_an_outage_and_others_get_503(
    db_sessions: async_sessionmaker[AsyncSession], dead_engine: AsyncEngine
) -> None:
    secret = await _key(db_sessions, "shop")
    auth = Authenticator(db_sessions, ttl_s=0)
    verified = await auth.resolve(secret)
    assert verified is not None

    auth._sessions = make_sessionmaker(dead_engine)
    assert await auth.resolve(secret) == verified
    with pytest.raises(Problem) as unknown:
        await auth.resolve(UNKNOWN_KEY)
    assert unknown.value.status == 503
    assert int(unknown.value.headers["Retry-After"]) > 0
    # A malformed key is refused without the database.
    assert await auth.resolve("cxk_nope") is None


@pytest.mark.integration
async def test_the_grace_ends(
    db_sessions: async_sessionmaker[AsyncSession], dead_engine: AsyncEngine
) -> None:
    secret = await _key(db_sessions, "shop")
    auth = Authenticator(db_sessions, ttl_s=0, stale_if_error_s=0)
    assert await auth.resolve(secret) is not None
    auth._sessions = make_sessionmaker(dead_engine)
    with pytest.raises(Problem) as expired:
        await auth.resolve(secret)
    assert expired.value.status == 503


@pytest.mark.integration
async def test_a_revoked_key_is_refused_at_once_and_not_revived_by_an_outage(
    db_sessions: async_sessionmaker[AsyncSession], dead_engine: AsyncEngine
) -> None:
    secret = await _key(db_sessions, "shop")
    auth = Authenticator(db_sessions, ttl_s=0)
    assert await auth.resolve(secret) is not None
    async with db_sessions() as session, session.begin():
        assert await apikeys.revoke_key(session, name="shop")
    assert await auth.resolve(secret) is None

    auth._sessions = make_sessionmaker(dead_engine)
    with pytest.raises(Problem) as during:
        await auth.resolve(secret)
    assert during.value.status == 503


@pytest.mark.integration
async def test_http_answers_503_problems_while_the_database_is_down(
    db_sessions: async_sessionmaker[AsyncSession],
    dead_engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = await _key(db_sessions, "shop")
    app = FastAPI()
    install_problem_handlers(app)
    auth = Authenticator(db_sessions, ttl_s=0)
    app.state.authenticator = auth

    @app.post("/ingest")
    async def ingest(key: IngestKey) -> dict[str, str]:
        return {"name": key.name}

    @app.get("/cases")
    async def cases() -> list[int]:
        async with make_sessionmaker(dead_engine)() as session:
            return list(await session.scalars(text("SELECT 1")))

    @app.get("/conflict")
    async def conflict() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/ingest", headers={"X-API-Key": secret})).status_code == 200
        auth._sessions = make_sessionmaker(dead_engine)

        accepted = await client.post("/ingest", headers={"X-API-Key": secret})
        assert accepted.status_code == 200
        unknown = await client.post("/ingest", headers={"X-API-Key": UNKNOWN_KEY})
        assert unknown.status_code == 503
        assert unknown.headers["content-type"] == "application/problem+json"
        assert "Retry-After" in unknown.headers

        caplog.clear()
        with caplog.at_level(logging.ERROR):
            for _ in range(3):
                down = await client.get("/cases")
                assert down.status_code == 503
                assert down.headers["content-type"] == "application/problem+json"
                assert down.headers["Retry-After"] == "5"
                assert down.json()["status"] == 503
        outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(outage_lines) == 1
        assert outage_lines[0].exc_info is None

        # Not every database error is an outage: a bug stays a 500.
        assert (await client.get("/conflict")).status_code == 500

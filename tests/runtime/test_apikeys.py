"""API keys: creation rules, hashing, constant-time verification, revocation, and HTTP auth."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request

from cxruntime import apikeys
from cxruntime.auth import Authenticator, ReadKey, presented_key
from cxruntime.orm import ApiKeyRow
from cxruntime.problems import install_problem_handlers


def test_key_format_and_hash() -> None:
    assert apikeys.parse_key_id("cxk_abcdef0123456789_" + "s" * 43) == "abcdef0123456789"
    for bad in ("", "Bearer x", "cxk_", "cxk_abc", "cxk_abc_short", "xyz_abc_" + "s" * 43):
        assert apikeys.parse_key_id(bad) is None
    digest = apikeys.hash_key("cxk_a_secret")
    assert len(digest) == 64
    assert apikeys.verify("cxk_a_secret", digest)
    assert not apikeys.verify("cxk_a_secreT", digest)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scopes": ["ingest", "write"]}, "scopes must be among"),
        ({"scopes": []}, "scopes must be among"),
        ({"scopes": ["ingest"], "channels": ["fax"]}, "unknown channels fax"),
        ({"scopes": ["ingest"], "channels": ["web"], "publishable": True}, "allowed origin"),
        (
            {
                "scopes": ["read"],
                "channels": ["web"],
                "publishable": True,
                "origins": ["https://a.b"],
            },
            "only have the scope ingest",
        ),
        (
            {"scopes": ["ingest"], "publishable": True, "origins": ["https://a.b"]},
            r"only post on the channel web \(--channels web\)",
        ),
        ({"scopes": ["ingest"], "origins": ["https://a.b"]}, "for publishable keys"),
        ({"name": "   ", "scopes": ["read"]}, "without white space at either end"),
        ({"name": " k", "scopes": ["read"]}, "without white space at either end"),
        ({"name": "tab\tname", "scopes": ["read"]}, "control characters"),
        (
            {
                "scopes": ["ingest"],
                "channels": ["web"],
                "publishable": True,
                "origins": ["https://a.b/"],
            },
            "no path",
        ),
    ],
)
def test_invalid_key_requests_are_refused_clearly(kwargs: dict[str, object], message: str) -> None:
    request = {"name": "k", "scopes": [], "channels": [], "origins": [], "publishable": False}
    request.update(kwargs)
    with pytest.raises(apikeys.ApiKeyRequestError, match=message):
        apikeys.validate_request(**request)  # type: ignore[arg-type]


@pytest.mark.integration
async def test_create_authenticate_revoke(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    async with db_sessions() as session, session.begin():
        key, secret = await apikeys.create_key(
            session, name="web-widget", scopes=["ingest"], channels=["web", "app"]
        )
    assert secret.startswith("cxk_")
    assert key.allows("ingest")
    assert not key.allows("read")
    assert key.allows_channel("web")
    assert not key.allows_channel("email")

    async with db_sessions() as session:
        row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.name == "web-widget"))
        assert row is not None
        assert secret not in (row.key_hash, row.key_id)  # the secret itself is never stored
        found = await apikeys.authenticate(session, secret)
        assert found is not None
        assert found.name == "web-widget"
        assert await apikeys.authenticate(session, secret[:-1] + "x") is None

    async with db_sessions() as session, session.begin():
        with pytest.raises(apikeys.ApiKeyRequestError, match="exists already"):
            await apikeys.create_key(session, name="web-widget", scopes=["read"])
    async with db_sessions() as session, session.begin():
        assert await apikeys.revoke_key(session, name="web-widget")
        assert not await apikeys.revoke_key(session, name="web-widget")
    async with db_sessions() as session:
        assert await apikeys.authenticate(session, secret) is None
        listed = await apikeys.list_keys(session)
        assert [k.name for k in listed] == ["web-widget"]
        assert listed[0].revoked_at is not None


@pytest.mark.integration
async def test_a_revoked_keys_name_can_be_given_to_a_new_key(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session, session.begin():
        _, old = await apikeys.create_key(session, name="appkey", scopes=["ingest"])
    async with db_sessions() as session, session.begin():
        assert await apikeys.revoke_key(session, name="appkey")
    async with db_sessions() as session, session.begin():
        key, new = await apikeys.create_key(session, name="appkey", scopes=["ingest", "read"])
    assert key.name == "appkey"
    async with db_sessions() as session, session.begin():
        # While the new key lives, its name is taken; the revoked row does not count.
        with pytest.raises(apikeys.ApiKeyRequestError, match="exists already"):
            await apikeys.create_key(session, name="appkey", scopes=["read"])
    async with db_sessions() as session:
        assert await apikeys.authenticate(session, old) is None
        found = await apikeys.authenticate(session, new)
        assert found is not None
        assert found.scopes == {"ingest", "read"}
        listed = await apikeys.list_keys(session)
        # The revoked key stays listed, for the audit trail.
        assert [(k.name, k.revoked_at is None) for k in listed] == [
            ("appkey", False),
            ("appkey", True),
        ]
    async with db_sessions() as session, session.begin():
        assert await apikeys.revoke_key(session, name="appkey")  # the live one
    async with db_sessions() as session:
        assert await apikeys.authenticate(session, new) is None


@pytest.mark.integration
async def test_two_creations_of_one_name_at_once_give_one_key_and_a_clear_error(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as first, db_sessions() as second:
        await first.begin()
        await apikeys.create_key(first, name="twin", scopes=["read"])
        await second.begin()
        # The second checks before the first commits, so only the unique index can stop it.
        racing = asyncio.create_task(apikeys.create_key(second, name="twin", scopes=["read"]))
        await asyncio.sleep(0.3)
        assert not racing.done()  # waiting on the first transaction's row
        await first.commit()
        with pytest.raises(apikeys.ApiKeyRequestError, match="exists already"):
            await racing
        await second.rollback()
    async with db_sessions() as session:
        assert [k.name for k in await apikeys.list_keys(session)] == ["twin"]


@pytest.mark.integration
async def test_http_auth_answers_401_and_403_as_problems(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session, session.begin():
        _, reader = await apikeys.create_key(session, name="reader", scopes=["read"])
        _, ingester = await apikeys.create_key(session, name="ingester", scopes=["ingest"])
        _, admin = await apikeys.create_key(session, name="admin", scopes=["admin"])
    app = FastAPI()
    install_problem_handlers(app)
    app.state.authenticator = Authenticator(db_sessions, ttl_s=0)

    @app.get("/secret")
    async def secret(key: ReadKey) -> dict[str, str]:
        return {"name": key.name}

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        missing = await client.get("/secret")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert "WWW-Authenticate" in missing.headers
        wrong = await client.get(
            "/secret", headers={"Authorization": "Bearer cxk_nope_" + "x" * 30}
        )
        assert wrong.status_code == 401
        forbidden = await client.get("/secret", headers={"X-API-Key": ingester})
        assert forbidden.status_code == 403
        assert "lacks the scope 'read'" in forbidden.json()["detail"]
        ok = await client.get("/secret", headers={"Authorization": f"Bearer {reader}"})
        assert ok.json() == {"name": "reader"}
        assert (await client.get("/secret", headers={"X-API-Key": admin})).status_code == 200


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer cxk_a")], "cxk_a"),
        ([(b"authorization", b"bearer   cxk_a  ")], "cxk_a"),
        ([(b"x-api-key", b"cxk_b")], "cxk_b"),
        # A bearer token wins; another scheme falls back to X-API-Key.
        ([(b"x-api-key", b"cxk_b"), (b"authorization", b"Bearer cxk_a")], "cxk_a"),
        ([(b"authorization", b"Basic dXNlcg=="), (b"x-api-key", b"cxk_b")], "cxk_b"),
        ([(b"authorization", b"Basic dXNlcg==")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"x-api-key", b"")], None),
        # The first of a repeated header counts.
        ([(b"x-api-key", b"cxk_1"), (b"x-api-key", b"cxk_2")], "cxk_1"),
        ([], None),
    ],
)
def test_presented_key(headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    request = Request({"type": "http", "headers": [(b"host", b"x"), *headers]})
    assert presented_key(request) == expected

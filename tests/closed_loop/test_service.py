"""`cxloop closed-loop` as a process against the embedded broker and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxruntime import apikeys
from cxruntime.embedded import EmbeddedKafka
from tests.closed_loop.helpers import SECRET, ServiceProcess, WebhookReceiver, enriched, produce

pytestmark = pytest.mark.integration


async def _key(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    scopes: list[str],
    team: str | None = None,
) -> str:
    async with sessions() as session, session.begin():
        _, secret = await apikeys.create_key(session, name=name, scopes=scopes, team=team)
    return secret


async def test_detractor_reaches_the_default_webhook_and_the_case_api(
    kafka: EmbeddedKafka,
    database_url: str,
    db_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver()
    service = ServiceProcess(
        {
            "CX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "CX_DATABASE_URL": database_url,
            "CX_DATA_DIR": str(tmp_path / "data"),
            "CX_CLOSED_LOOP_WEBHOOK_URL": receiver.url,
            "CX_CLOSED_LOOP_WEBHOOK_SECRET": SECRET,
        },
        tmp_path / "closed-loop.log",
    )
    await asyncio.to_thread(service.start)
    try:
        key = await _key(db_sessions, "agent", ["cases"])
        promoter = enriched(customer="crm-happy", nps=10)
        detractor = enriched(customer="crm-4711", nps=2, comment="Drei Tage zu spät.")
        await produce(kafka.bootstrap, [promoter, detractor])
        await asyncio.to_thread(receiver.wait_for, lambda r: r.of_type("case.opened"))
        opened = receiver.of_type("case.opened")
        assert len(opened) == 1
        data = opened[0].body["data"]
        assert data["customer"]["id"] == "crm-4711"
        assert data["feedback"]["id"] == detractor.id
        assert data["team"] == "logistics"
        assert receiver.rejected == []

        async with httpx.AsyncClient(base_url=service.url) as client:
            listed = (await client.get("/v1/cases", headers={"X-API-Key": key})).json()
            assert listed["total"] == 1
            assert listed["items"][0]["id"] == data["id"]
            unauthenticated = await client.get("/v1/cases")
            assert unauthenticated.status_code == 401
            assert unauthenticated.headers["content-type"] == "application/problem+json"
            metrics = (await client.get("/metrics")).text
            assert "cx_closed_loop_cases_opened_total" in metrics
    finally:
        assert await asyncio.to_thread(service.stop) == 0
        receiver.close()

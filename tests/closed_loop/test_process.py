"""`cxloop closed-loop` processes: killed mid-deliveries and restarted; reloaded on SIGHUP."""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop.orm import CaseRow
from cxruntime import apikeys
from cxruntime.embedded import EmbeddedKafka
from tests.closed_loop.helpers import SECRET, ServiceProcess, WebhookReceiver, enriched, produce

pytestmark = pytest.mark.integration


def env(kafka: EmbeddedKafka, database_url: str, tmp_path: Path, url: str) -> dict[str, str]:
    return {
        "CX_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "CX_DATABASE_URL": database_url,
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_CLOSED_LOOP_WEBHOOK_URL": url,
        "CX_CLOSED_LOOP_WEBHOOK_SECRET": SECRET,
        "CX_CLOSED_LOOP_RETRY_BASE_S": "0.1",
        "CX_CLOSED_LOOP_TIMER_INTERVAL_S": "1",
    }


async def test_killed_mid_deliveries_loses_nothing_and_reuses_no_webhook_id(
    kafka: EmbeddedKafka,
    database_url: str,
    db_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver(delay_s=0.1)
    slow = {"CX_CLOSED_LOOP_ENDPOINT_CONCURRENCY": "2"}  # 40 deliveries take about 2 s
    service = ServiceProcess(
        env(kafka, database_url, tmp_path, receiver.url) | slow, tmp_path / "closed-loop.log"
    )
    await asyncio.to_thread(service.start)
    n = 40
    try:
        await produce(kafka.bootstrap, [enriched(customer=f"crm-{i}", nps=2) for i in range(n)])
        await asyncio.to_thread(receiver.wait_for, lambda r: len(r.received) >= 5, 30)
        # Hold the deliveries now in progress, so that the kill lands mid-stream however slow
        # or fast this machine is; they are answered later, after the process is gone.
        receiver.delay_s = 5.0
        await asyncio.to_thread(service.kill)  # SIGKILL: no final commit, no cleanup
        before = len(receiver.received)
        assert before < n, "the kill came too late to interrupt anything"
        receiver.delay_s = 0.1
        await asyncio.to_thread(service.start)
        await asyncio.to_thread(
            receiver.wait_for, lambda r: len({x.webhook_id for x in r.received}) >= n, 60
        )
    finally:
        await asyncio.to_thread(service.stop)
        receiver.close()

    async with db_sessions() as session:
        cases = list(await session.scalars(select(CaseRow)))
    assert len(cases) == n  # redelivered Kafka records opened no second case
    cases_by_webhook: dict[str, set[str]] = defaultdict(set)
    for item in receiver.received:
        assert item.body["type"] == "case.opened"
        cases_by_webhook[item.webhook_id].add(item.body["data"]["id"])
    assert all(len(ids) == 1 for ids in cases_by_webhook.values())
    assert {next(iter(ids)) for ids in cases_by_webhook.values()} == {str(c.id) for c in cases}
    assert len(cases_by_webhook) == n
    assert receiver.rejected == []


async def test_sighup_reloads_routing_and_keeps_state(
    kafka: EmbeddedKafka,
    database_url: str,
    db_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    routing = config_dir / "routing.yaml"
    routing.write_text(
        "teams: [{name: triage}, {name: logistics}, {name: returns-desk}]\n"
        "routes: [{matchers: ['touchpoint=\"delivery\"'], team: logistics}]\n"
        "triage: {team: triage}\n"
    )
    receiver = WebhookReceiver()
    service = ServiceProcess(
        env(kafka, database_url, tmp_path, receiver.url) | {"CX_CONFIG_DIR": str(config_dir)},
        tmp_path / "closed-loop.log",
    )
    async with db_sessions() as session, session.begin():
        _, key = await apikeys.create_key(session, name="agent", scopes=["cases"])
    await asyncio.to_thread(service.start)
    try:
        await produce(kafka.bootstrap, [enriched(customer="a", nps=2)])
        await asyncio.to_thread(receiver.wait_for, lambda r: len(r.received) == 1)
        assert receiver.received[0].body["data"]["team"] == "logistics"

        routing.write_text("teams: [oops")  # a broken file is refused; the old one stays
        service.signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        routing.write_text(
            "teams: [{name: triage}, {name: logistics}, {name: returns-desk}]\n"
            "routes: [{matchers: ['touchpoint=\"delivery\"'], team: returns-desk}]\n"
            "triage: {team: triage}\n"
        )
        service.signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        await produce(kafka.bootstrap, [enriched(customer="b", nps=2)])
        await asyncio.to_thread(receiver.wait_for, lambda r: len(r.received) == 2)
        assert receiver.received[1].body["data"]["team"] == "returns-desk"
        async with httpx.AsyncClient(base_url=service.url) as client:
            cases = (await client.get("/v1/cases", headers={"X-API-Key": key})).json()
            metrics = (await client.get("/metrics")).text
        assert sorted(c["team"] for c in cases["items"]) == ["logistics", "returns-desk"]
        assert 'cx_closed_loop_config_reloads_total{outcome="failed"} 1.0' in metrics
        assert 'cx_closed_loop_config_reloads_total{outcome="ok"} 1.0' in metrics
    finally:
        assert await asyncio.to_thread(service.stop) == 0
        receiver.close()

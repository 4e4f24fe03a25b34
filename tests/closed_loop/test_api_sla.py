"""SLA breaches in the case API: the original deadlines stay, breaches are recorded and
cleared by a reopening, `breached` filters and `sort` orders (ASGI against PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop.api import ClosedLoopState, router
from cxloop_closed_loop.cases import fire_due_timers
from cxloop_closed_loop.clock import ManualClock
from cxloop_closed_loop.holder import ConfigHolder
from cxruntime import apikeys
from cxruntime.auth import Authenticator
from cxruntime.problems import install_problem_handlers
from tests.closed_loop.helpers import enriched
from tests.closed_loop.test_cases_db import MONDAY_10, feed, make_config

pytestmark = pytest.mark.integration

CONFIG = make_config()  # logistics: 09:00-17:00 UTC; normal 1h/4h, high 30m/2h


def at(hour: int, minute: int = 0) -> datetime:
    return MONDAY_10.replace(hour=hour, minute=minute)


class Api:
    def __init__(
        self,
        client: httpx.AsyncClient,
        key: str,
        clock: ManualClock,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self.client, self.key, self.clock, self.sessions = client, key, clock, sessions

    async def customers(self, **params: str) -> list[str]:
        response = await self.client.get(
            "/v1/cases", headers={"Authorization": f"Bearer {self.key}"}, params=params
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"]) or "limit" in params
        return [c["customer"]["id"] for c in body["items"]]

    async def case(self, customer: str) -> dict[str, Any]:
        response = await self.client.get(
            "/v1/cases",
            headers={"Authorization": f"Bearer {self.key}"},
            params={"customer": customer},
        )
        [case] = response.json()["items"]
        detail = await self.client.get(
            f"/v1/cases/{case['id']}", headers={"Authorization": f"Bearer {self.key}"}
        )
        result: dict[str, Any] = detail.json()
        return result

    async def act(self, customer: str, action: str, body: dict[str, Any] | None = None) -> None:
        case = await self.case(customer)
        response = await self.client.post(
            f"/v1/cases/{case['id']}/{action}",
            headers={"Authorization": f"Bearer {self.key}"},
            json=body or {},
        )
        assert response.status_code == 200, response.text

    async def fire(self) -> int:
        async with self.sessions() as session, session.begin():
            return await fire_due_timers(session, config=CONFIG, now=self.clock.now())


@pytest.fixture
async def api(db_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Api]:
    """Three logistics cases: c1 normal at 10:00 (acknowledge by 11:00, resolve by 14:00),
    c2 high at 10:10 (10:40, 12:10), c3 normal at 10:20 and resolved at 10:30."""
    clock = ManualClock(at(10))
    for customer, nps, opened in [("c1", 3, at(10)), ("c2", 1, at(10, 10)), ("c3", 3, at(10, 20))]:
        event = enriched(customer=customer, nps=nps, occurred_at=opened)
        assert await feed(db_sessions, CONFIG, event, opened) == "opened"
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    app.state.authenticator = Authenticator(db_sessions)
    app.state.closed_loop = ClosedLoopState(
        sessions=db_sessions,
        config=ConfigHolder(lambda: CONFIG),
        clock=clock,
        wake_relay=lambda: None,
    )
    async with db_sessions() as session, session.begin():
        _, key = await apikeys.create_key(session, name="agent", scopes=["cases"], team=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cl") as client:
        api = Api(client, key, clock, db_sessions)
        clock.set(at(10, 30))
        await api.act("c3", "resolve", {"root_cause": "delivery_delay", "note": "voucher"})
        yield api


async def test_an_escalated_case_keeps_its_deadline_and_shows_the_breach(api: Api) -> None:
    api.clock.set(at(10, 50))
    assert await api.fire() == 1
    c2 = await api.case("c2")
    assert c2["escalation_level"] == 1
    assert c2["acknowledge_due_at"] == "2026-11-23T10:40:00Z"
    assert c2["acknowledge_breached_at"] == "2026-11-23T10:40:00Z"
    assert c2["resolve_breached_at"] is None
    [escalated] = [h for h in c2["history"] if h["action"] == "escalated"]
    assert escalated["details"]["next_due_at"] == "2026-11-23T11:20:00+00:00"
    c1 = await api.case("c1")
    assert (c1["acknowledge_breached_at"], c1["resolve_breached_at"]) == (None, None)


async def test_breached_filter(api: Api) -> None:
    api.clock.set(at(10, 50))
    await api.fire()
    assert await api.customers(breached="true") == ["c2"]
    assert await api.customers(breached="false") == ["c3", "c1"]
    # c1's acknowledge deadline (11:00) has passed, the SLA worker has not run yet: breached.
    api.clock.set(at(11, 5))
    assert await api.customers(breached="true") == ["c2", "c1"]
    assert await api.fire() == 1
    assert (await api.case("c1"))["acknowledge_breached_at"] == "2026-11-23T11:00:00Z"
    # Acknowledging late does not undo the breach of this SLA period.
    await api.act("c1", "acknowledge")
    assert await api.customers(breached="true", status="acknowledged") == ["c1"]
    assert await api.customers(breached="false") == ["c3"]


async def test_reopening_clears_the_breach_but_the_history_keeps_it(api: Api) -> None:
    api.clock.set(at(10, 50))
    await api.fire()
    await api.act("c2", "resolve", {"root_cause": "delivery_delay", "note": "called"})
    assert await api.customers(breached="true") == ["c2"]
    api.clock.set(at(11))
    await api.act("c2", "reopen")
    c2 = await api.case("c2")
    assert (c2["acknowledge_breached_at"], c2["resolve_breached_at"]) == (None, None)
    assert c2["acknowledge_due_at"] == "2026-11-23T11:30:00Z"
    assert c2["escalation_level"] == 0
    assert [h["details"]["due_at"] for h in c2["history"] if h["action"] == "escalated"] == [
        "2026-11-23T10:40:00+00:00"
    ]
    assert "c2" in await api.customers(breached="false")


async def test_sort_by_opening_or_earliest_open_deadline(api: Api) -> None:
    assert await api.customers() == ["c3", "c2", "c1"]  # newest first by default
    assert await api.customers(sort="-opened_at") == ["c3", "c2", "c1"]
    assert await api.customers(sort="opened_at") == ["c1", "c2", "c3"]
    # c2 is due at 10:40, c1 at 11:00; resolved c3 has no deadline left and comes last.
    assert await api.customers(sort="due") == ["c2", "c1", "c3"]
    assert await api.customers(sort="-due") == ["c1", "c2", "c3"]
    # Once acknowledged, c2's next deadline is its resolve deadline (12:10), after c1's 11:00.
    await api.act("c2", "acknowledge")
    assert await api.customers(sort="due") == ["c1", "c2", "c3"]
    assert await api.customers(sort="due", limit="1", offset="1") == ["c2"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"sort": "updated_at"}, "query.sort"), ({"breached": "maybe"}, "query.breached")],
)
async def test_bad_sort_and_breached_values_are_refused(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = await api.client.get(
        "/v1/cases", headers={"Authorization": f"Bearer {api.key}"}, params=params
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]

"""The case and delivery API over ASGI against the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop.api import ClosedLoopState, deliveries_router, router
from cxloop_closed_loop.cases import apply_feedback
from cxloop_closed_loop.clock import SystemClock
from cxloop_closed_loop.holder import ConfigHolder
from cxruntime import apikeys
from cxruntime.auth import Authenticator
from cxruntime.problems import install_problem_handlers
from tests.closed_loop.helpers import enriched
from tests.closed_loop.test_cases_db import make_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(
    db_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    config = make_config()
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(deliveries_router)
    app.state.authenticator = Authenticator(db_sessions)
    app.state.closed_loop = ClosedLoopState(
        sessions=db_sessions,
        config=ConfigHolder(lambda: config),
        clock=SystemClock(),
        wake_relay=lambda: None,
    )
    keys = {}
    async with db_sessions() as session, session.begin():
        for name, scopes, team in [
            ("agent", ["cases"], None),
            ("logistics-agent", ["cases"], "logistics"),
            ("billing-agent", ["cases"], "billing"),
            ("reader", ["read"], None),
            ("admin", ["admin"], None),
        ]:
            _, keys[name] = await apikeys.create_key(session, name=name, scopes=scopes, team=team)
        for customer, touchpoint, nps in [("c1", "delivery", 3), ("c2", "billing", 1)]:
            await apply_feedback(
                session,
                event=enriched(customer=customer, nps=nps, touchpoint=touchpoint),
                config=config,
                now=datetime.now(UTC),
            )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cl") as client:
        yield client, keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def first_case(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/cases", headers=auth(key), params=params)
    assert response.status_code == 200
    case: dict[str, Any] = response.json()["items"][0]
    return case


async def test_list_and_filter(api: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    client, keys = api
    everything = (await client.get("/v1/cases", headers=auth(keys["agent"]))).json()
    assert everything["total"] == 2
    high = (
        await client.get("/v1/cases", headers=auth(keys["agent"]), params={"severity": "high"})
    ).json()
    assert [c["team"] for c in high["items"]] == ["triage"]
    page = (
        await client.get("/v1/cases", headers=auth(keys["agent"]), params={"limit": 1, "offset": 1})
    ).json()
    assert (len(page["items"]), page["total"]) == (1, 2)
    bad = await client.get("/v1/cases", headers=auth(keys["agent"]), params={"status": "x"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_full_lifecycle_with_history(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    h = auth(keys["agent"])
    case = await first_case(client, keys["agent"], team="logistics")
    base = f"/v1/cases/{case['id']}"
    assert (
        await client.post(f"{base}/close", headers=h, json={"contact_outcome": "reached_resolved"})
    ).status_code == 409
    steps: list[tuple[str, dict[str, Any] | None, str]] = [
        ("acknowledge", None, "acknowledged"),
        ("assign", {"assignee": "maria"}, "acknowledged"),
        ("contact", {"note": "called"}, "contacted"),
        ("notes", {"note": "customer wants a voucher"}, "contacted"),
        ("resolve", {"root_cause": "delivery_delay", "note": "voucher sent"}, "resolved"),
        ("close", {"contact_outcome": "reached_resolved"}, "closed"),
        ("reopen", {"note": "customer called again"}, "open"),
    ]
    for action, body, status in steps:
        response = await client.post(f"{base}/{action}", headers=h, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    again = await client.post(f"{base}/reopen", headers=h)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    detail = (await client.get(base, headers=h)).json()
    assert [e["action"] for e in detail["history"]] == [
        "opened",
        "acknowledge",
        "assign",
        "contact",
        "notes",
        "resolve",
        "close",
        "reopen",
    ]
    assert detail["history"][1]["actor"] == "key:agent"
    assert detail["feedback"][0]["event"]["customer"]["id"] == "c1"
    assert detail["reopen_count"] == 1


async def test_validation_of_resolve_and_close(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    h = auth(keys["agent"])
    case = await first_case(client, keys["agent"], team="logistics")
    base = f"/v1/cases/{case['id']}"
    unknown = await client.post(
        f"{base}/resolve", headers=h, json={"root_cause": "gremlins", "note": "x"}
    )
    assert unknown.status_code == 422
    assert "delivery_delay" in unknown.json()["detail"]
    missing_note = await client.post(
        f"{base}/resolve", headers=h, json={"root_cause": "delivery_delay"}
    )
    assert missing_note.status_code == 422
    assert missing_note.json()["errors"][0]["field"] == "note"
    assert (
        await client.post(
            f"{base}/resolve", headers=h, json={"root_cause": "delivery_delay", "note": "ok"}
        )
    ).status_code == 200
    no_outcome = await client.post(f"{base}/close", headers=h, json={})
    assert no_outcome.status_code == 422


async def test_team_keys_see_and_change_only_their_team(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    mine = (await client.get("/v1/cases", headers=auth(keys["logistics-agent"]))).json()
    assert [c["team"] for c in mine["items"]] == ["logistics"]
    forbidden = await client.get(
        "/v1/cases", headers=auth(keys["logistics-agent"]), params={"team": "triage"}
    )
    assert forbidden.status_code == 403
    case = await first_case(client, keys["agent"], team="logistics")
    other = auth(keys["billing-agent"])
    assert (await client.get(f"/v1/cases/{case['id']}", headers=other)).status_code == 404
    assert (
        await client.post(f"/v1/cases/{case['id']}/acknowledge", headers=other)
    ).status_code == 404
    ok = await client.post(
        f"/v1/cases/{case['id']}/acknowledge", headers=auth(keys["logistics-agent"])
    )
    assert ok.status_code == 200


async def test_scopes(api: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    client, keys = api
    assert (await client.get("/v1/cases")).status_code == 401
    assert (await client.get("/v1/cases", headers=auth(keys["reader"]))).status_code == 403
    assert (await client.get("/v1/cases", headers=auth(keys["admin"]))).status_code == 200
    assert (await client.get("/v1/deliveries", headers=auth(keys["agent"]))).status_code == 403
    assert (
        await client.get("/v1/cases/not-a-uuid", headers=auth(keys["agent"]))
    ).status_code == 404


async def test_deliveries_listing_detail_and_resend(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    h = auth(keys["admin"])
    listed = (await client.get("/v1/deliveries", headers=h)).json()
    assert listed["total"] == 3  # logistics: team + global; triage: global
    assert (await client.get("/v1/deliveries", headers=h, params={"status": "dead"})).json()[
        "total"
    ] == 0
    delivery = listed["items"][0]
    detail = (await client.get(f"/v1/deliveries/{delivery['id']}", headers=h)).json()
    assert detail["body"]["type"] == "case.opened"
    pending = await client.post(f"/v1/deliveries/{delivery['id']}/resend", headers=h)
    assert pending.status_code == 409
    assert (await client.post("/v1/deliveries/msg_nope/resend", headers=h)).status_code == 404


async def test_filters_take_several_values_comma_separated_or_repeated(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    h = auth(keys["agent"])
    case = await first_case(client, keys["agent"], team="logistics")
    acknowledged = await client.post(f"/v1/cases/{case['id']}/acknowledge", headers=h)
    assert acknowledged.status_code == 200

    async def teams(params: Any) -> list[str]:
        response = await client.get("/v1/cases", headers=h, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"])
        return sorted(c["team"] for c in body["items"])

    assert await teams({"status": "open"}) == ["triage"]
    assert await teams({"status": "open,acknowledged"}) == ["logistics", "triage"]
    assert await teams([("status", "open"), ("status", "acknowledged")]) == [
        "logistics",
        "triage",
    ]
    assert await teams([("status", "open, contacted"), ("status", "acknowledged")]) == [
        "logistics",
        "triage",
    ]
    assert await teams({"status": "resolved,closed"}) == []
    assert await teams({"team": "logistics,triage"}) == ["logistics", "triage"]
    assert await teams([("team", "logistics"), ("team", "triage")]) == ["logistics", "triage"]
    assert await teams({"severity": "high,normal"}) == ["logistics", "triage"]
    assert await teams([("severity", "low"), ("severity", "high")]) == ["triage"]
    # Empty values filter nothing, as from a form with nothing chosen.
    assert await teams({"status": "", "team": "", "severity": ""}) == ["logistics", "triage"]
    # A team-bound key may name its own team, and nothing else.
    mine = auth(keys["logistics-agent"])
    own = await client.get("/v1/cases", headers=mine, params={"team": "logistics,logistics"})
    assert [c["team"] for c in own.json()["items"]] == ["logistics"]
    other = await client.get("/v1/cases", headers=mine, params={"team": "logistics,triage"})
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"offset": "99999999999999999999"}, "query.offset"),
        ({"offset": str(2**63)}, "query.offset"),
        ({"offset": "-1"}, "query.offset"),
        ({"limit": "501"}, "query.limit"),
        ({"limit": "0"}, "query.limit"),
        ({"status": "open,waiting"}, "query.status.1"),
        ({"severity": "urgent"}, "query.severity.0"),
        ({"team": "logistics,a\x00b"}, "query.team.1"),
        ({"team": "x" * 101}, "query.team.0"),
        ({"team": ",".join(f"t{i}" for i in range(101))}, "query.team"),
    ],
)
async def test_bad_list_parameters_are_problems_naming_the_field(
    api: tuple[httpx.AsyncClient, dict[str, str]], params: dict[str, str], field: str
) -> None:
    client, keys = api
    response = await client.get("/v1/cases", headers=auth(keys["agent"]), params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_the_deepest_page_is_empty_not_an_error(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    for path, key in [("/v1/cases", "agent"), ("/v1/deliveries", "admin")]:
        response = await client.get(
            path, headers=auth(keys[key]), params={"offset": "1000000000", "limit": "500"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []
        assert response.json()["total"] > 0
        too_deep = await client.get(path, headers=auth(keys[key]), params={"offset": "1e30"})
        assert too_deep.status_code == 422


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("notes", {"note": "\\u0000 nul byte"}, "note"),
        ("acknowledge", {"note": "called \\u0000"}, "note"),
        ("contact", {"note": "\\u0000"}, "note"),
        ("reopen", {"note": "\\u0000"}, "note"),
        ("assign", {"assignee": "ma\\u0000ria"}, "assignee"),
        ("assign", {"assignee": "maria", "note": "\\u0000"}, "note"),
        ("resolve", {"root_cause": "delivery_delay\\u0000", "note": "ok"}, "root_cause"),
        ("resolve", {"root_cause": "delivery_delay", "note": "ok\\u0000"}, "note"),
        ("close", {"contact_outcome": "reached\\u0000", "note": "x"}, "contact_outcome"),
        ("close", {"contact_outcome": "reached_resolved", "note": "\\u0000"}, "note"),
        ("assign", {"assignee": "m" * 201}, "assignee"),
        ("notes", {"note": "\\ud800 lone surrogate"}, "note"),
    ],
)
async def test_what_postgresql_cannot_store_is_refused_naming_the_field(
    api: tuple[httpx.AsyncClient, dict[str, str]], action: str, body: dict[str, str], field: str
) -> None:
    client, keys = api
    h = {**auth(keys["agent"]), "content-type": "application/json"}
    case = await first_case(client, keys["agent"], team="logistics")
    # Written by hand: JSON's \u0000 escape, exactly as a client sends it.
    raw = "{" + ", ".join(f'"{k}": "{v}"' for k, v in body.items()) + "}"
    response = await client.post(f"/v1/cases/{case['id']}/{action}", headers=h, content=raw)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == field
    if "\\u0000" in body[field]:
        assert error["message"] == "must not contain the NUL character (U+0000)"
    history = (await client.get(f"/v1/cases/{case['id']}", headers=h)).json()["history"]
    assert [entry["action"] for entry in history] == ["opened"]


async def test_a_key_with_the_longest_name_can_act(
    api: tuple[httpx.AsyncClient, dict[str, str]], db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    client, keys = api
    async with db_sessions() as session, session.begin():
        _, long_key = await apikeys.create_key(session, name="n" * 200, scopes=["cases"])
    case = await first_case(client, keys["agent"], team="logistics")
    response = await client.post(
        f"/v1/cases/{case['id']}/notes", headers=auth(long_key), json={"note": "hello"}
    )
    assert response.status_code == 200, response.text
    detail = (await client.get(f"/v1/cases/{case['id']}", headers=auth(long_key))).json()
    assert detail["history"][-1]["actor"] == "key:" + "n" * 200


async def test_a_delivery_id_with_a_nul_is_not_found(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    h = auth(keys["admin"])
    assert (await client.get("/v1/deliveries/msg_%00", headers=h)).status_code == 404
    assert (await client.post("/v1/deliveries/msg_%00/resend", headers=h)).status_code == 404


@pytest.mark.parametrize(
    ("path", "key", "params", "field"),
    [
        ("/v1/cases", "agent", {"order": "opened_at"}, "query.order"),
        ("/v1/cases", "agent", {"status": "open", "teams": "logistics"}, "query.teams"),
        ("/v1/cases", "logistics-agent", {"customer_id": "c1"}, "query.customer_id"),
        ("/v1/deliveries", "admin", {"state": "dead"}, "query.state"),
    ],
)
async def test_unknown_query_parameters_are_refused_naming_them(
    api: tuple[httpx.AsyncClient, dict[str, str]],
    path: str,
    key: str,
    params: dict[str, str],
    field: str,
) -> None:
    client, keys = api
    response = await client.get(path, headers=auth(keys[key]), params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert "limit" in error["message"]  # says what the endpoint takes
    # without a key: 401, and not a word about the parameters
    anonymous = await client.get(path, params=params)
    assert anonymous.status_code == 401
    assert field.removeprefix("query.") not in anonymous.text


async def test_an_unknown_team_is_refused_naming_the_configured_teams(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    response = await client.get(
        "/v1/cases", headers=auth(keys["agent"]), params={"team": "logistics,nosuchteam"}
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "query.team"
    assert "nosuchteam" in error["message"]
    assert "['triage', 'logistics']" in error["message"]
    # a team-bound key naming another team is still forbidden, known or not
    mine = auth(keys["logistics-agent"])
    other = await client.get("/v1/cases", headers=mine, params={"team": "nosuchteam"})
    assert other.status_code == 403


async def test_filter_by_customer_and_assignee_and_unassign(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, keys = api
    h = auth(keys["agent"])

    async def customers(params: Any) -> list[str]:
        response = await client.get("/v1/cases", headers=h, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"])
        return sorted(c["customer"]["id"] for c in body["items"])

    assert await customers({"customer": "c1"}) == ["c1"]
    assert await customers({"customer": "c1,c2"}) == ["c1", "c2"]
    assert await customers([("customer", "c2"), ("customer", "nobody")]) == ["c2"]
    assert await customers({"customer": "c1", "team": "triage"}) == []
    case = await first_case(client, keys["agent"], customer="c1")
    assert await customers({"assignee": "maria"}) == []
    assigned = await client.post(
        f"/v1/cases/{case['id']}/assign", headers=h, json={"assignee": "maria"}
    )
    assert assigned.json()["assignee"] == "maria"
    assert await customers({"assignee": "maria,jo"}) == ["c1"]
    unassigned = await client.post(
        f"/v1/cases/{case['id']}/assign", headers=h, json={"assignee": None}
    )
    assert unassigned.status_code == 200, unassigned.text
    assert unassigned.json()["assignee"] is None
    assert await customers({"assignee": "maria"}) == []
    detail = (await client.get(f"/v1/cases/{case['id']}", headers=h)).json()
    assert detail["history"][-1]["details"] == {"assignee": {"from": "maria", "to": None}}
    # leaving the field out is still a mistake, not an unassignment
    missing = await client.post(f"/v1/cases/{case['id']}/assign", headers=h, json={})
    assert missing.status_code == 422

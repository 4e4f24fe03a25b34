"""POST /v1/channels/email and the one-click rating link against Kafka and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_collector.rating import RatingSigner
from cxruntime.embedded import EmbeddedKafka
from cxschema import decode_received
from tests.collector.helpers import Collector, KeyMaker, read_topic

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures"


async def test_raw_and_provider_mails(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key(name="mail-inbound", channels=("email",))
    headers = {"X-API-Key": key, "Content-Type": "message/rfc822"}
    raw = (FIXTURES / "mail_multipart_qp_de.eml").read_bytes()
    response = await collector.client.post("/v1/channels/email", content=raw, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["id"] == "CAF3x9Qm7+7dKp@mail.example.de"
    # The same mail delivered twice by the provider is a duplicate.
    again = await collector.client.post("/v1/channels/email", content=raw, headers=headers)
    assert again.json()["status"] == "duplicate"

    html_only = (FIXTURES / "mail_html_only_base64_en.eml").read_bytes()
    response = await collector.client.post("/v1/channels/email", content=html_only, headers=headers)
    assert response.status_code == 202, response.text

    provider = {
        "from": "Jürgen Weiß <j.weiss@example.at>",
        "to": "service@shop.example",
        "subject": "Rückerstattung",
        "text": "Immer noch kein Geld.\n\nAm 22.11.2026 schrieb Service <s@shop.example>:\n> alt",
        "html": "",
        "headers": {"Message-ID": "<prov-1@mx>", "Date": "Mon, 23 Nov 2026 11:00:00 +0100"},
    }
    response = await collector.client.post(
        "/v1/channels/email", json=provider, headers={"X-API-Key": key}
    )
    assert response.status_code == 202, response.text

    nothing = {**provider, "text": "> nur Zitat", "headers": {}}
    response = await collector.client.post(
        "/v1/channels/email", json=nothing, headers={"X-API-Key": key}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "text"

    events = {
        e.customer.id: e
        for e in (
            decode_received(v)
            for _, v, _ in await read_topic(collector.settings.kafka_bootstrap(), 3)
        )
        if e.customer is not None
    }
    assert set(events) == {
        "anna.schmidt@example.de",
        "james.oneill@example.co.uk",
        "j.weiss@example.at",
    }
    anna = events["anna.schmidt@example.de"]
    assert anna.channel == "email"
    assert anna.context.subject.endswith("Überprüfung Nr. A-1001")
    assert anna.comment is not None
    assert anna.comment.endswith("Die Hotline war aber sehr freundlich.")  # no "Viele Grüße"
    assert events["j.weiss@example.at"].comment == "Immer noch kein Geld."


async def test_broken_mails_are_answered_without_losing_them(
    collector: Collector, make_key: KeyMaker
) -> None:
    key = await make_key(name="mail-broken", channels=("email",))
    headers = {"X-API-Key": key, "Content-Type": "message/rfc822"}

    def mail(extra: str, body: str = "Rechnung falsch.", sender: str = "a@b.de") -> bytes:
        return f"From: {sender}\r\nSubject: x\r\n{extra}\r\n\r\n{body}\r\n".encode()

    accepted = {
        "charset": mail("Content-Type: text/plain; charset=x-unknown-charset"),
        "empty-id": mail("Message-ID: <>"),
        "id-abc": mail("Message-ID: <a b c>"),
        "id-axy": mail("Message-ID: <a x y>"),
        "date": mail("Date: Fri, 31 Dec 9999 23:59:59 -1200"),
        "idn": mail("", sender="Müller <müller@b.de>"),
    }
    ids = {}
    for name, raw in accepted.items():
        response = await collector.client.post("/v1/channels/email", content=raw, headers=headers)
        assert response.status_code == 202, (name, response.text)
        ids[name] = response.json()["id"]
    assert ids["id-abc"] == "a b c"
    assert ids["id-axy"] == "a x y"  # not a duplicate of "a b c"

    response = await collector.client.post(
        "/v1/channels/email", content=mail("", body="zu sp\x00t"), headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "text"
    response = await collector.client.post(
        "/v1/channels/email",
        content=b"{",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "json_invalid"

    records = await read_topic(collector.settings.kafka_bootstrap(), len(accepted))
    events = {event.id: event for event in (decode_received(value) for _, value, _ in records)}
    assert len(events) == len(accepted)
    dated = events[ids["date"]]
    assert dated.occurred_at == dated.received_at  # the impossible Date fell back
    idn = events[ids["idn"]]
    assert idn.customer is not None
    assert idn.customer.id == "müller@b.de"


async def test_mail_needs_an_email_channel_key(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key(name="web-only", channels=("web",))
    response = await collector.client.post(
        "/v1/channels/email",
        content=(FIXTURES / "mail_multipart_qp_de.eml").read_bytes(),
        headers={"X-API-Key": key, "Content-Type": "message/rfc822"},
    )
    assert response.status_code == 403


async def test_rating_link_records_the_score_once(
    collector: Collector, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    signer = collector.app.state.rating_signer
    assert isinstance(signer, RatingSigner)
    token = signer.issue(
        customer="crm-4711", survey="nps", expires_at=datetime.now(UTC) + timedelta(days=14)
    )
    response = await collector.client.get(
        "/v1/channels/email/rate", params={"t": token, "score": 9}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Danke" in response.text
    assert "(9)" in response.text

    second = await collector.client.get("/v1/channels/email/rate", params={"t": token, "score": 2})
    assert second.status_code == 200
    assert "bereits" in second.text
    assert "(9)" in second.text

    out_of_range = signer.issue(
        customer="crm-1", survey="csat", expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    bad = await collector.client.get(
        "/v1/channels/email/rate", params={"t": out_of_range, "score": 9}
    )
    assert bad.status_code == 422
    forged = await collector.client.get(
        "/v1/channels/email/rate", params={"t": token[:-3] + "abc", "score": 9}
    )
    assert forged.status_code == 400
    expired = signer.issue(
        customer="crm-1", survey="nps", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    gone = await collector.client.get("/v1/channels/email/rate", params={"t": expired, "score": 9})
    assert gone.status_code == 410

    records = await read_topic(collector.settings.kafka_bootstrap(), 1)
    assert len(records) == 1
    event = decode_received(records[0][1])
    assert event.scores.nps == 9
    assert event.channel == "email"
    assert event.customer is not None
    assert event.customer.id == "crm-4711"
    assert event.context.survey == "nps"
    assert event.source == "/cxloop/channels/email/rating"
    async with db_sessions() as session:
        votes = (await session.execute(text("SELECT score FROM collector_rating_votes"))).all()
    assert [row.score for row in votes] == [9]


async def test_rating_is_not_recorded_when_kafka_does_not_acknowledge(
    collector: Collector, kafka: EmbeddedKafka, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    signer = collector.app.state.rating_signer
    assert isinstance(signer, RatingSigner)
    token = signer.issue(
        customer="crm-5", survey="ces", expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    kafka.freeze()
    try:
        response = await collector.client.get(
            "/v1/channels/email/rate", params={"t": token, "score": 6}
        )
    finally:
        kafka.thaw()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    async with db_sessions() as session:
        count = await session.scalar(text("SELECT count(*) FROM collector_rating_votes"))
    assert count == 0

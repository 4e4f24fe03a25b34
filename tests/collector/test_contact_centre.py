"""Contact-centre survey records: the CSV parser (unit) and the endpoint (integration)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cxloop_collector.contact_centre import parse_csv, parse_json, parse_score
from cxschema import decode_received
from tests.collector.helpers import Collector, KeyMaker, read_topic

FIXTURES = Path(__file__).parent / "fixtures"
BERLIN = ZoneInfo("Europe/Berlin")
EXPORT = (FIXTURES / "contact_centre_export_de.csv").read_bytes()


def test_semicolon_csv_with_bom_and_decimal_commas() -> None:
    rows = parse_csv(EXPORT, BERLIN)
    assert [row.line for row in rows] == [2, 3, 4, 6, 7]
    first = rows[0].result
    assert isinstance(first, dict)
    assert first["id"] == "CC-20261123-0001"
    assert (first["scores"]["nps"], first["scores"]["csat"], first["scores"].get("ces")) == (
        2,
        1,
        2,
    )
    assert first["context"]["ivr_queue"] == "Rechnungen"
    assert first["context"]["agent_id"] == "agent-017"
    assert first["context"]["call_id"] == "CC-20261123-0001"
    assert first["customer"]["id"] == "crm-4711"
    assert first["comment"] == (
        "Kunde verärgert: Rechnung doppelt abgebucht; wartet seit zwei Wochen auf Erstattung."
    )
    assert first["occurred_at"] == datetime(2026, 11, 23, 9, 12, tzinfo=BERLIN)
    assert first["channel"] == "contact_centre"

    bad_nps = rows[2].result
    assert isinstance(bad_nps, list)
    assert bad_nps[0]["field"] == "NPS"
    half = rows[3].result
    assert isinstance(half, list)
    assert half[0]["field"] == "CSAT"
    assert "whole number" in half[0]["message"]
    multiline = rows[4].result
    assert isinstance(multiline, dict)
    assert multiline["comment"] == "Kündigung bestätigt.\nZweite Zeile der Notiz."
    assert multiline["scores"].get("csat") is None


def test_comma_csv_in_windows_1252() -> None:
    text = "call_id,queue,agent,nps,transcript\r\nA-1,Sales,ag-1,10,Schön\r\n"
    (row,) = parse_csv(text.encode("cp1252"), BERLIN)
    assert isinstance(row.result, dict)
    assert row.result["comment"] == "Schön"
    assert row.result["scores"]["nps"] == 10


@pytest.mark.parametrize(
    ("value", "expected"), [("4", 4), ("4,0", 4), (" 7 ", 7), (4.0, 4), ("", None), (None, None)]
)
def test_parse_score(value: object, expected: int | None) -> None:
    assert parse_score(value) == expected


def test_json_records() -> None:
    rows = parse_json(
        [
            {"call_id": "J-1", "queue": "Billing", "agent": "ag-2", "scores": {"csat": 2}},
            {
                "call_id": "J-2",
                "nps": 3,
                "transcript": "Waited 40 minutes.",
                "occurred_at": "2026-11-23T10:00:00Z",
            },
            {"queue": "no call id", "nps": 5},
            "not a record",
        ],
        BERLIN,
    )
    assert isinstance(rows[0].result, dict)
    assert rows[0].result["scores"]["csat"] == 2
    assert rows[0].result["context"]["agent_id"] == "ag-2"
    assert isinstance(rows[1].result, dict)
    assert rows[1].result["comment"] == "Waited 40 minutes."
    assert isinstance(rows[2].result, list)
    assert rows[2].result[0]["field"] == "call_id"
    assert isinstance(rows[3].result, list)


@pytest.mark.integration
async def test_csv_upload_answers_per_row(collector: Collector, make_key: KeyMaker) -> None:
    key = await make_key(name="contact-centre", channels=("contact_centre",))
    headers = {"X-API-Key": key, "Content-Type": "text/csv; charset=utf-8"}
    response = await collector.client.post(
        "/v1/channels/contact-centre", content=EXPORT, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 3
    assert {(item["index"], item["row"]) for item in body["rejected"]} == {(2, 4), (3, 6)}
    assert body["ids"][0] == "CC-20261123-0001"

    # Uploading the same export again writes nothing new.
    again = await collector.client.post(
        "/v1/channels/contact-centre", content=EXPORT, headers=headers
    )
    assert again.json()["duplicates"] == 3

    single = await collector.client.post(
        "/v1/channels/contact-centre",
        json={"call_id": "J-9", "queue": "Billing", "agent_id": "ag-1", "csat": 4},
        headers={"X-API-Key": key},
    )
    assert single.status_code == 200
    assert single.json()["accepted"] == 1

    records = await read_topic(collector.settings.kafka_bootstrap(), 4)
    events = {decode_received(value).id: decode_received(value) for _, value, _ in records}
    assert set(events) == {"CC-20261123-0001", "CC-20261123-0002", "CC-20261123-0005", "J-9"}
    assert events["CC-20261123-0002"].customer is not None
    assert events["CC-20261123-0002"].occurred_at.isoformat() == "2026-11-23T09:47:00+01:00"

    web_key = await make_key(name="web", channels=("web",))
    forbidden = await collector.client.post(
        "/v1/channels/contact-centre", content=EXPORT, headers={**headers, "X-API-Key": web_key}
    )
    assert forbidden.status_code == 403

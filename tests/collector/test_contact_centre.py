"""Contact-centre survey records: the CSV parser (unit) and the endpoint (integration)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cxloop_collector.contact_centre import (
    ALIASES,
    Row,
    parse_csv,
    parse_json,
    parse_score,
    parse_time,
)
from cxloop_collector.intake import BodyError
from cxschema import decode_received
from tests.collector.helpers import Collector, KeyMaker, read_topic

FIXTURES = Path(__file__).parent / "fixtures"
BERLIN = ZoneInfo("Europe/Berlin")
EXPORT = (FIXTURES / "contact_centre_export_de.csv").read_bytes()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def csv_rows(text: str | bytes) -> list[Row]:
    body = text.encode() if isinstance(text, str) else text
    return parse_csv(body, BERLIN, received_at=NOW).rows


def json_rows(document: Any) -> list[Row]:
    return parse_json(document, BERLIN, received_at=NOW).rows


def errors_of(row: Row) -> dict[str, str]:
    assert isinstance(row.result, list), row.result
    return {error["field"]: error["message"] for error in row.result}


def test_semicolon_csv_with_bom_and_decimal_commas() -> None:
    rows = csv_rows(EXPORT)
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
    (row,) = csv_rows(text.encode("cp1252"))
    assert isinstance(row.result, dict)
    assert row.result["comment"] == "Schön"
    assert row.result["scores"]["nps"] == 10


@pytest.mark.parametrize(
    ("value", "expected"), [("4", 4), ("4,0", 4), (" 7 ", 7), (4.0, 4), ("", None), (None, None)]
)
def test_parse_score(value: object, expected: int | None) -> None:
    assert parse_score(value) == expected


def test_json_records() -> None:
    rows = json_rows(
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
        ]
    )
    assert isinstance(rows[0].result, dict)
    assert rows[0].result["scores"]["csat"] == 2
    assert rows[0].result["context"]["agent_id"] == "ag-2"
    assert isinstance(rows[1].result, dict)
    assert rows[1].result["comment"] == "Waited 40 minutes."
    assert isinstance(rows[2].result, list)
    assert rows[2].result[0]["field"] == "call_id"
    assert isinstance(rows[3].result, list)


def test_json_records_are_strict() -> None:
    typo, conflict, same, nested_unknown, nested_object, flag = json_rows(
        [
            {"call_id": "u1", "nps": 5, "transcrpt": "Kunde wartet seit Wochen."},
            {"call_id": "u2", "nps": 2, "scores": {"nps": 9}},
            {"call_id": "u3", "nps": 9, "scores": {"nps": 9}, "anruf_id": "u3"},
            {"call_id": "u4", "scores": {"nps": 9, "effort": 2}},
            {"call_id": "u5", "nps": 5, "customer": {"id": "crm-1"}},
            {"call_id": True, "nps": 5},
        ]
    )
    assert "unknown field" in errors_of(typo)["transcrpt"]
    assert errors_of(conflict) == {
        "nps": "given twice with different values: nps is 2, scores.nps is 9"
    }
    assert isinstance(same.result, dict)  # the same value twice is no conflict
    assert same.result["scores"] == {"nps": 9}
    assert "unknown score" in errors_of(nested_unknown)["scores.effort"]
    assert "string" in errors_of(nested_object)["customer"]
    assert "string" in errors_of(flag)["call_id"]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("31.02.2026 10:00", "'31.02.2026 10:00' is not a valid date and time"),
        ("2026-02-31T10:00:00Z", "'2026-02-31T10:00:00Z' is not a valid date and time"),
        ("gestern", "'gestern' is not a date and time; write one such as 23.11.2026 14:05"),
        ("31.12.9999 23:59", "must lie between 1970 and 2099"),
        ("24.11.2026 14:00", "lies more than 1 day after the time the collector received"),
    ],
)
def test_time_cells_are_refused_with_a_clear_message(cell: str, message: str) -> None:
    (row,) = csv_rows(f"call_id;nps;datum\nT-1;5;{cell}\n")
    assert message in errors_of(row)["datum"]


def test_parse_time() -> None:
    assert parse_time("23.11.2026 14:05", BERLIN) == datetime(2026, 11, 23, 14, 5, tzinfo=BERLIN)
    assert parse_time("2026-11-23T14:05:00Z", BERLIN) == datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
    assert parse_time(" ", BERLIN) is None
    with pytest.raises(ValueError, match="written as text"):
        parse_time(1700000000, BERLIN)


def test_a_header_without_known_columns_is_one_error() -> None:
    with pytest.raises(BodyError) as caught:
        parse_csv(b"Kanal;Dauer\nTelefon;3:10\n", BERLIN, received_at=NOW)
    assert caught.value.status == 422
    (error,) = caught.value.errors
    assert error["field"] == "(header)"
    assert all(name in error["message"] for name in ALIASES)
    with pytest.raises(BodyError) as caught:
        parse_csv(b"NPS;Kommentar\n5;gut\n", BERLIN, received_at=NOW)
    (error,) = caught.value.errors
    assert "no call id column" in error["message"]
    assert "anruf_id" in error["message"]
    with pytest.raises(BodyError) as caught:
        parse_csv(b"", BERLIN, received_at=NOW)
    assert caught.value.status == 422


def test_a_csv_the_reader_cannot_take_is_one_error() -> None:
    body = b"call_id;kommentar\nA;" + b"x" * 200_000 + b"\n"
    with pytest.raises(BodyError) as caught:
        parse_csv(body, BERLIN, received_at=NOW)
    assert caught.value.status == 422
    assert "line 2" in caught.value.errors[0]["message"]


def test_utf16_exports_are_read() -> None:
    text = "Anruf-ID\tNPS\tKommentar\r\nU-1\t9\tSchön\r\n"
    for encoding in ("utf-16", "utf-16-be"):
        body = text.encode(encoding)
        if encoding == "utf-16-be":
            body = b"\xfe\xff" + body
        (row,) = csv_rows(body)
        assert isinstance(row.result, dict)
        assert row.result["comment"] == "Schön"
    # Without a byte-order mark it cannot be told from UTF-8; the error says what to do.
    with pytest.raises(BodyError) as caught:
        parse_csv(text.encode("utf-16-le"), BERLIN, received_at=NOW)
    assert "UTF-16" in str(caught.value)


def test_ragged_rows_and_ignored_columns() -> None:
    upload = parse_csv(
        b"call_id;nps;Kanal;NPS_Score\nR-1;5;Telefon;7\nR-2;5;Telefon;7;verrutscht\nR-3;6\n"
        b"R-4;4;Telefon;;\n",
        BERLIN,
        received_at=NOW,
    )
    assert upload.ignored_columns == ["Kanal", "NPS_Score"]  # unknown, and nps a second time
    ok, ragged, short, trailing = upload.rows
    assert isinstance(ok.result, dict)
    assert ok.result["scores"] == {"nps": 5}
    assert "5 cells but 4 columns" in errors_of(ragged)["(row)"]
    assert isinstance(short.result, dict)  # missing trailing cells are blank
    assert isinstance(trailing.result, dict)  # an empty trailing cell is no data


def test_nul_in_a_cell_is_refused_once() -> None:
    (row,) = csv_rows("call_id;nps;kommentar\nN\x001;5;gut\n")
    assert errors_of(row) == {"call_id": "must not contain the NUL character (U+0000)"}
    (row,) = json_rows({"call_id": "N-2", "nps": 5, "transcript": "gut\x00"})
    assert errors_of(row) == {"transcript": "must not contain the NUL character (U+0000)"}


def test_too_many_records_is_413() -> None:
    with pytest.raises(BodyError) as caught:
        json_rows([{"call_id": str(i), "nps": 1} for i in range(2001)])
    assert caught.value.status == 413
    assert caught.value.errors[0]["type"] == "too_large"


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

    # One clear error for an export the collector cannot read, not one per row.
    unknown = await collector.client.post(
        "/v1/channels/contact-centre", content=b"Kanal;Dauer\nTelefon;3:10\n", headers=headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "(header)"
    # Columns left out are said in the answer.
    extra = await collector.client.post(
        "/v1/channels/contact-centre",
        content=b"call_id;nps;Kanal\nX-1;8;Telefon\n",
        headers=headers,
    )
    assert extra.json()["ignored_columns"] == ["Kanal"]
    strict = await collector.client.post(
        "/v1/channels/contact-centre",
        json={"call_id": "J-10", "nps": 5, "transcrpt": "Lange Wartezeit."},
        headers={"X-API-Key": key},
    )
    assert strict.json()["rejected"][0]["errors"][0]["field"] == "transcrpt"
    malformed = await collector.client.post(
        "/v1/channels/contact-centre",
        content=b"[",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["type"] == "json_invalid"

    web_key = await make_key(name="web", channels=("web",))
    forbidden = await collector.client.post(
        "/v1/channels/contact-centre", content=EXPORT, headers={**headers, "X-API-Key": web_key}
    )
    assert forbidden.status_code == 403

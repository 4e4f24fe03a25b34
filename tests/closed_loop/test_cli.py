"""`cxloop routes test` and the `cxloop webhooks listen` development receiver."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import httpx
import pytest

from cxloop_closed_loop.listen import make_server
from cxloop_closed_loop.senders import signed_headers
from cxruntime.cli import main
from cxruntime.embedded import free_port
from tests.closed_loop.helpers import SECRET, enriched


def test_routes_test_prints_route_team_and_receivers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CX_CLOSED_LOOP_WEBHOOK_URL", "http://127.0.0.1:9/hooks")
    monkeypatch.setenv("CX_CLOSED_LOOP_WEBHOOK_SECRET", SECRET)
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "channel": "app",
                "customer": {"id": "crm-1", "segment": "premium"},
                "scores": {"nps": 1},
                "comment": "Ich will kündigen.",
                "touchpoint": "delivery.delay",
            }
        )
    )
    assert main(["routes", "test", "--event", str(event)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "case: yes (nps=1, keyword=kündigen), severity high",
        "route: delivery (owner) -> team logistics",
        "team: logistics",
        "receivers: default-webhook",
    ]


def test_routes_test_on_a_promoter_and_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CX_CLOSED_LOOP_WEBHOOK_URL", raising=False)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"channel": "web", "scores": {"nps": 10}, "touchpoint": "x"}))
    assert main(["routes", "test", "--event", str(event)]) == 0
    out = capsys.readouterr().out
    assert "case: no" in out
    assert "route: triage (owner) -> team cx-triage" in out
    event.write_text("{not json")
    assert main(["routes", "test", "--event", str(event)]) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe", ["not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"]),
        (
            b"{not json",
            [
                "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                "(char 1)"
            ],
        ),
        (b"[" * 100_000, ["not JSON: nested too deeply"]),
        (b"[1]", ["not a feedback event: (event): expected a JSON object, not a list"]),
        (
            json.dumps({"channel": "fax", "scores": {"nps": 12}}).encode(),
            [
                "not a feedback event: channel: Input should be 'web', 'app', 'email' or "
                "'contact_centre' (got 'fax')",
                "not a feedback event: scores.nps: Input should be less than or equal to 10 "
                "(got 12)",
            ],
        ),
        (
            json.dumps({"channel": "web", "comment": "a\u0000b"}).encode(),
            [
                "not a feedback event: comment: must not contain the NUL character (U+0000) "
                "(got 'a\\x00b')"
            ],
        ),
        (
            # An enriched event with one mistake is told that mistake, not the native schema's
            # complaints about every enriched field.
            enriched(nps=3).model_dump_json().replace('"nps":3', '"nps":"three"').encode(),
            ["not a feedback event: scores.nps: Input should be a valid integer (got 'three')"],
        ),
    ],
)
def test_routes_test_says_in_a_line_a_field_what_is_wrong_with_the_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: list[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(content)
    assert main(["routes", "test", "--event", str(event)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"cxloop routes test: {event}: {line}" for line in expected]


def test_routes_test_reads_utf8_with_a_byte_order_mark_and_names_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"channel": "web", "scores": {"nps": 2}}).encode()
    )
    assert main(["routes", "test", "--event", str(event)]) == 0
    assert "case: yes (nps=2)" in capsys.readouterr().out
    missing = tmp_path / "missing.json"
    assert main(["routes", "test", "--event", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"cxloop routes test: cannot read {missing}: No such file or directory\n"
    )


def test_listen_verifies_and_prints() -> None:
    out = io.StringIO()
    port = free_port()
    server = make_server("127.0.0.1", port, SECRET, out=out)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = json.dumps({"type": "case.opened", "timestamp": "t", "data": {"id": "c1"}})
        good = httpx.post(
            f"http://127.0.0.1:{port}/", content=body, headers=signed_headers("msg_1", body, SECRET)
        )
        forged = httpx.post(
            f"http://127.0.0.1:{port}/",
            content=body.replace("c1", "c2"),
            headers=signed_headers("msg_2", body, SECRET),
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (good.status_code, forged.status_code) == (204, 401)
    printed = out.getvalue()
    assert "case.opened webhook-id=msg_1 (signature verified)" in printed
    assert "REJECTED msg_2" in printed


@pytest.mark.integration
def test_deliveries_list_and_resend(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    from datetime import UTC, datetime

    from sqlalchemy import select, update

    from cxloop_closed_loop.cases import apply_feedback
    from cxloop_closed_loop.orm import DeliveryRow
    from cxruntime.db import make_engine, make_sessionmaker
    from tests.closed_loop.helpers import enriched
    from tests.closed_loop.test_cases_db import make_config

    async def seed() -> str:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                await apply_feedback(
                    session,
                    event=enriched(customer="c", nps=1),
                    config=make_config(),
                    now=datetime.now(UTC),
                )
                ids = list(await session.scalars(select(DeliveryRow.id).order_by(DeliveryRow.id)))
                await session.execute(
                    update(DeliveryRow)
                    .where(DeliveryRow.id == ids[0])
                    .values(status="dead", attempts=10, last_error="HTTP 503")
                )
            return ids[0]
        finally:
            await engine.dispose()

    async def status_of(delivery_id: str) -> str:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                row = await session.get(DeliveryRow, delivery_id)
                assert row is not None
                return row.status
        finally:
            await engine.dispose()

    dead = asyncio.run(seed())
    monkeypatch.setenv("CX_DATABASE_URL", database_url)
    assert main(["deliveries", "list"]) == 0
    listing = capsys.readouterr().out
    assert dead in listing
    assert "HTTP 503" in listing
    assert "1 in all" in listing
    assert main(["deliveries", "resend", dead]) == 0
    assert f"re-queued {dead}" in capsys.readouterr().out
    assert asyncio.run(status_of(dead)) == "pending"
    assert main(["deliveries", "resend", dead]) == 1  # still pending: nothing to re-send
    assert main(["deliveries", "resend", "msg_unknown"]) == 1


def test_listen_refuses_a_bad_or_busy_port_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("99999", "0", "-1"):
        with pytest.raises(SystemExit) as stopped:
            main(["webhooks", "listen", "--port", bad, "--secret", SECRET])
        assert stopped.value.code == 2
        assert "a port is 1 to 65535" in capsys.readouterr().err
    busy = make_server("127.0.0.1", free_port(), SECRET)
    try:
        port = busy.server_address[1]
        assert main(["webhooks", "listen", "--port", str(port), "--secret", SECRET]) == 2
        err = capsys.readouterr().err
        assert f"cannot listen on 127.0.0.1:{port}" in err
        assert "Traceback" not in err
    finally:
        busy.server_close()

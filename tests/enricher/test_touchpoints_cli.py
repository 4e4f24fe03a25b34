"""`cxloop touchpoints test --event FILE` explains which rule decided."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from cxruntime.cli import main


def _write(tmp_path: Path, data: object) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_explains_the_matching_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = {
        "channel": "contact_centre",
        "scores": {"csat": 1},
        "comment": "Ewig in der Warteschleife",
        "context": {"ivr_queue": "DE_Billing"},
    }
    assert main(["touchpoints", "test", "--event", _write(tmp_path, event)]) == 0
    out = capsys.readouterr().out
    assert "touchpoint:     service.contact_centre.billing" in out
    assert "journey stage:  service" in out
    assert "owner team:     contact_centre" in out
    assert "rule 'ivr-billing': ivr_queue 'DE_Billing' matches 'Bill'" in out


def test_json_lines_for_a_list_of_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [
        {"channel": "web", "comment": "Rückerstattung fehlt", "touchpoint": "delivery"},
        {"channel": "web", "comment": "Rückerstattung fehlt"},
        {"channel": "web", "comment": "Alles gut"},
    ]
    assert main(["touchpoints", "test", "--json", "--event", _write(tmp_path, events)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["touchpoint"], x["via"]) for x in lines] == [
        ("delivery", "hint"),
        ("returns.refund", "rule"),
        ("unclassified", "default"),
    ]
    assert lines[1]["rule"] == "refund"


def test_uses_the_taxonomy_of_cx_config_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    taxonomy = {
        "touchpoints": [
            {"id": "store", "name": "Store", "stage": "purchase", "team": "retail"},
            {"id": "unclassified", "name": "Other", "stage": "unknown"},
        ],
        "rules": [{"name": "store", "touchpoint": "store", "text": ["filiale"]}],
    }
    (tmp_path / "touchpoints.yaml").write_text(yaml.safe_dump(taxonomy), encoding="utf-8")
    monkeypatch.setenv("CX_CONFIG_DIR", str(tmp_path))
    event = {"channel": "web", "comment": "Die Filiale war voll"}
    assert main(["touchpoints", "test", "--event", _write(tmp_path, event)]) == 0
    out = capsys.readouterr().out
    assert f"taxonomy:       {tmp_path / 'touchpoints.yaml'}" in out
    assert "touchpoint:     store (Store)" in out


def test_a_bad_event_or_taxonomy_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["touchpoints", "test", "--event", _write(tmp_path, {"channel": "fax"})]) == 2
    assert "not a feedback event" in capsys.readouterr().err
    (tmp_path / "touchpoints.yaml").write_text("touchpoints: []\n", encoding="utf-8")
    monkeypatch.setenv("CX_CONFIG_DIR", str(tmp_path))
    event = _write(tmp_path, {"channel": "web", "comment": "x"})
    assert main(["touchpoints", "test", "--event", event]) == 2
    assert "invalid touchpoint taxonomy" in capsys.readouterr().err


def test_a_bad_item_in_a_list_is_named_and_an_empty_list_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"channel": "web", "comment": "Paket kam nicht"}
    bad = {"channel": "web", "scores": {"nps": 12}}
    path = _write(tmp_path, [good, good, bad])
    assert main(["touchpoints", "test", "--event", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}: not a feedback event (item 2 of the list, counted from 0)" in err
    assert "scores.nps" in err
    assert main(["touchpoints", "test", "--event", _write(tmp_path, [])]) == 2
    assert "an empty list, no event to test" in capsys.readouterr().err


def test_rules_read_the_redacted_texts_without_placeholders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    taxonomy = {
        "touchpoints": [
            {"id": "phone", "name": "Phone sales", "stage": "purchase"},
            {"id": "unclassified", "name": "Other", "stage": "unknown"},
        ],
        "rules": [{"name": "phone", "touchpoint": "phone", "text": ["phone", "0171"]}],
    }
    (tmp_path / "touchpoints.yaml").write_text(yaml.safe_dump(taxonomy), encoding="utf-8")
    monkeypatch.setenv("CX_CONFIG_DIR", str(tmp_path))
    events = [
        # As in the enricher: the comment and the subject are redacted first, and the rules
        # do not read "[PHONE]" as "phone".
        {"channel": "web", "comment": "Call me: 0171 1234567"},
        {"channel": "email", "comment": "?", "context": {"subject": "Rückruf 0171 1234567"}},
        {"channel": "web", "comment": "Call me by phone: 0171 1234567"},
    ]
    assert main(["touchpoints", "test", "--json", "--event", _write(tmp_path, events)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["touchpoint"] for line in lines] == ["unclassified", "unclassified", "phone"]
    assert lines[2]["reasons"] == ["text keyword 'phone' matches 'phone'"]


SAMPLE = [
    {"channel": "web", "comment": "Lieferung kam zu spät"},
    {"channel": "web", "comment": "Lieferung kam zu spät"},
    {"channel": "web", "comment": "Lieferung kam zu spät", "touchpoint": "delivery"},
    {"channel": "web", "comment": "Ich warte auf mein Geld, Herr Maier sagt nichts"},
    {"channel": "web", "comment": "Alles bestens"},
    {"channel": "web", "scores": {"nps": 9}},
]


def test_summary_counts_touchpoints_and_rules_and_shows_unclassified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SAMPLE)
    assert main(["touchpoints", "test", "--summary", "--examples", "1", "--event", path]) == 0
    out = capsys.readouterr().out
    assert "events:    6" in out
    lines = out.splitlines()
    assert any(line.split() == ["unclassified", "3", "50.0%", "default", "3"] for line in lines)
    assert any(
        line.split() == ["delivery.delay", "2", "33.3%", "rule", "delivery-delay", "2"]
        for line in lines
    )
    assert any(line.split() == ["delivery", "1", "16.7%", "hint", "1"] for line in lines)
    # Only the first, and redacted as the enricher passes it on.
    assert '  "Ich warte auf mein Geld, Herr [NAME] sagt nichts"' in lines
    assert '"Alles bestens"' not in out
    assert "ivr-billing" in out.split("rules that decided no event")[1]

    assert main(["touchpoints", "test", "--summary", "--json", "--event", path]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 6
    assert summary["touchpoints"][0] == {
        "touchpoint": "unclassified",
        "events": 3,
        "share": 0.5,
        "decided_by": {"default": 3},
    }
    assert "delivery-delay" not in summary["unused_rules"]
    assert "ivr-billing" in summary["unused_rules"]
    assert summary["unclassified_examples"] == [
        "Ich warte auf mein Geld, Herr [NAME] sagt nichts",
        "Alles bestens",
    ]


def test_reads_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in SAMPLE[:2]) + "\n\n", encoding="utf-8")
    assert main(["touchpoints", "test", "--json", "--event", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["touchpoint"] for line in lines] == ["delivery.delay"] * 2
    path.write_text(json.dumps(SAMPLE[0]) + '\n{"channel": "fax"}\n{oops\n', encoding="utf-8")
    assert main(["touchpoints", "test", "--event", str(path)]) == 2
    assert "line 3: not JSON" in capsys.readouterr().err
    path.write_text(json.dumps(SAMPLE[0]) + '\n{"channel": "fax"}\n', encoding="utf-8")
    assert main(["touchpoints", "test", "--event", str(path)]) == 2
    assert "not a feedback event (line 2)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe", ["not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"]),
        (
            b"{oops",
            [
                "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                "(char 1)"
            ],
        ),
        (b"[" * 100_000, ["not JSON: nested too deeply"]),
        (b"7", ["not a feedback event: (event): expected a JSON object, not a number"]),
        (
            json.dumps(
                [{"channel": "web", "comment": "ok"}, {"channel": "fax", "scores": {"nps": 12}}]
            ).encode(),
            [
                "not a feedback event (item 1 of the list, counted from 0): channel: Input "
                "should be 'web', 'app', 'email' or 'contact_centre' (got 'fax')",
                "not a feedback event (item 1 of the list, counted from 0): scores.nps: Input "
                "should be less than or equal to 10 (got 12)",
            ],
        ),
        (
            json.dumps({"channel": "web"}).encode(),
            [
                "not a feedback event: (event): an event needs at least one score (nps, csat, "
                "ces) or a comment"
            ],
        ),
        (
            # A received event with one mistake is told that mistake, not the native schema's
            # complaints about the fields only a received event has.
            json.dumps(
                {
                    "id": "e1",
                    "source": "web-widget",
                    "received_at": "2026-11-23T10:00:00Z",
                    "occurred_at": "2026-11-23T10:00:00Z",
                    "channel": "web",
                    "scores": {"nps": 11},
                }
            ).encode(),
            ["not a feedback event: scores.nps: Input should be less than or equal to 10 (got 11)"],
        ),
    ],
)
def test_a_bad_file_is_a_line_a_problem_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: list[str]
) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(content)
    assert main(["touchpoints", "test", "--event", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"cxloop touchpoints test: {path}: {line}" for line in expected]


def test_stdin_is_read_as_utf8_whatever_the_locale(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def stdin(data: bytes) -> io.TextIOWrapper:
        return io.TextIOWrapper(io.BytesIO(data), encoding="ascii")

    event = {"channel": "web", "comment": "Die Rückerstattung fehlt"}
    monkeypatch.setattr(
        "sys.stdin", stdin(b"\xef\xbb\xbf" + json.dumps(event, ensure_ascii=False).encode())
    )
    assert main(["touchpoints", "test", "--json", "--event", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["touchpoint"] == "returns.refund"
    monkeypatch.setattr("sys.stdin", stdin(b"\xff\xfe"))
    assert main(["touchpoints", "test", "--event", "-"]) == 2
    assert capsys.readouterr().err == (
        "cxloop touchpoints test: -: not UTF-8 text (byte 0xff at offset 0); save it as UTF-8\n"
    )

"""`cxloop dead-letters list|replay`: reading the dead-letter topic and writing records back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from cxruntime.cli import main
from cxruntime.deadletters import DeadLetter, Selection, read_dead_letters
from cxruntime.embedded import EmbeddedKafka
from cxruntime.kafka import make_producer
from cxschema import ENRICHED, INVALID, RAW, invalid_headers

ORIGINAL_HEADERS = [("ce_id", b"evt-1"), ("ce_type", b"com.cxloop.feedback.submitted.v1")]


def _letter(reason: str, stage: str, topic: str | None, at_ms: int = 0) -> DeadLetter:
    headers = invalid_headers(
        ORIGINAL_HEADERS, reason=reason, stage=stage, topic=topic, partition=2, offset=41
    )
    return DeadLetter(0, 7, at_ms, b"crm-1", b"{bad", tuple(headers))


def test_a_dead_letter_says_why_where_from_and_what_it_was() -> None:
    letter = _letter("invalid JSON: EOF", "enricher", RAW, at_ms=1_764_000_000_000)
    assert (letter.reason, letter.stage, letter.source_topic) == (
        "invalid JSON: EOF",
        "enricher",
        RAW,
    )
    assert letter.source == f"{RAW}[2]@41"
    assert letter.original_headers == ORIGINAL_HEADERS
    assert letter.time == datetime.fromtimestamp(1_764_000_000, UTC)
    assert _letter("x", "metrics", None).source == "?[2]@41"


def test_selection() -> None:
    letter = _letter("Enrichment failed: bad taxonomy", "enricher", RAW, at_ms=2_000)
    assert Selection()(letter)
    assert Selection(stage="enricher", reason="ENRICHMENT", topic=RAW)(letter)
    assert not Selection(stage="metrics")(letter)
    assert not Selection(reason="json")(letter)
    assert not Selection(topic=ENRICHED)(letter)
    assert Selection(since=datetime.fromtimestamp(2, UTC))(letter)
    assert not Selection(since=datetime.fromtimestamp(3, UTC))(letter)


async def _dead_letter(bootstrap: str, reason: str, stage: str, topic: str, value: bytes) -> None:
    producer = make_producer(bootstrap, client_id="test")
    await producer.start()
    try:
        headers = invalid_headers(
            ORIGINAL_HEADERS, reason=reason, stage=stage, topic=topic, partition=0, offset=5
        )
        await (await producer.send(INVALID, value, key=b"crm-1", headers=headers))
    finally:
        await producer.stop()


@pytest.mark.integration
def test_list_and_replay_against_the_broker(
    kafka: EmbeddedKafka, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = kafka.bootstrap
    monkeypatch.setenv("CX_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    assert main(["dead-letters", "list"]) == 0
    assert "0 of 0 dead letters selected" in capsys.readouterr().err

    asyncio.run(_dead_letter(bootstrap, "invalid JSON: EOF", "enricher", RAW, b"{bad"))
    asyncio.run(_dead_letter(bootstrap, "enrichment failed: x", "enricher", RAW, b'{"ok": 1}'))
    asyncio.run(_dead_letter(bootstrap, "not a valid FeedbackEnriched", "metrics", ENRICHED, b"{}"))

    letters, total = asyncio.run(read_dead_letters(bootstrap))
    assert total == 3
    assert [letter.stage for letter in letters] == ["enricher", "enricher", "metrics"]

    assert main(["dead-letters", "list", "--stage", "Enricher"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2
    assert "enricher" in lines[0]
    assert f"{RAW}[0]@5" in lines[0]
    assert "invalid JSON: EOF" in lines[0]
    assert "2 of 3 dead letters selected" in captured.err

    assert main(["dead-letters", "list", "--json", "--limit", "1"]) == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["stage"] == "metrics"
    assert record["value"] == "{}"
    assert record["key"] == "crm-1"

    # A dry run says what it would do and writes nothing.
    assert main(["dead-letters", "replay", "--reason", "enrichment failed"]) == 0
    assert capsys.readouterr().out.startswith(f"would replay 1 of 3 dead letters to {RAW}")
    assert asyncio.run(read_dead_letters(bootstrap, topic=RAW)) == ([], 0)

    assert main(["dead-letters", "replay", "--reason", "enrichment failed", "--yes"]) == 0
    assert "replayed 1 dead letter to" in capsys.readouterr().out
    [replayed], total = asyncio.run(read_dead_letters(bootstrap, topic=RAW))
    assert total == 1
    assert (replayed.key, replayed.value) == (b"crm-1", b'{"ok": 1}')
    assert list(replayed.headers) == ORIGINAL_HEADERS  # the cx_error_* headers are gone

    # A misspelt stage is a usage error, not an empty selection; the command's spelling works.
    with pytest.raises(SystemExit):
        main(["dead-letters", "list", "--stage", "enrichr"])
    assert "'enrichr' is not a stage; one of enricher, metrics, closed_loop" in (
        capsys.readouterr().err
    )
    assert main(["dead-letters", "replay", "--stage", "closed-loop"]) == 0
    assert "nothing to replay: none of the 3 dead letters matches" in capsys.readouterr().out

    with pytest.raises(SystemExit):
        main(["dead-letters", "list", "--limit", "-3"])
    assert "must be at least 0, not -3" in capsys.readouterr().err
    assert main(["dead-letters", "list", "--since", "yesterday"]) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err


@pytest.mark.integration
def test_every_dead_letter_of_one_batch_is_read(kafka: EmbeddedKafka) -> None:
    # An enricher dead-letters a batch's invalid records together; the embedded broker then
    # reports the partition's end as that batch's first offset plus one.
    async def write_and_read() -> tuple[list[DeadLetter], int]:
        producer = make_producer(kafka.bootstrap, client_id="test")
        await producer.start()
        try:
            sent = []
            for i in range(3):
                headers = invalid_headers(
                    ORIGINAL_HEADERS,
                    reason=f"bad {i}",
                    stage="enricher",
                    topic=RAW,
                    partition=0,
                    offset=i,
                )
                sent.append(await producer.send(INVALID, b"x", partition=0, headers=headers))
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        return await read_dead_letters(kafka.bootstrap)

    letters, total = asyncio.run(write_and_read())
    assert total == 3
    assert sorted(letter.reason for letter in letters) == ["bad 0", "bad 1", "bad 2"]

"""Signed one-click rating tokens (unit) and `cxloop rating-link`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from cxloop_collector.rating import (
    RatingError,
    RatingSigner,
    _b64,
    check_score,
    load_secret,
)
from cxruntime.cli import main

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_token_round_trip_and_tampering() -> None:
    signer = RatingSigner(b"s" * 32)
    token = signer.issue(customer="crm-4711", survey="csat", expires_at=NOW + timedelta(days=14))
    claim = signer.verify(token, now=NOW)
    assert (claim.customer, claim.survey) == ("crm-4711", "csat")
    assert claim.expires_at == NOW + timedelta(days=14)
    assert signer.issue(customer="crm-4711", survey="csat", expires_at=NOW) != token

    payload, signature = token.split(".")
    forged_payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for bad in (f"{forged_payload}.{signature}", f"{payload}.{signature[:-1]}x", payload, ""):
        with pytest.raises(RatingError) as caught:
            signer.verify(bad, now=NOW)
        assert caught.value.reason == "invalid"
    with pytest.raises(RatingError):
        RatingSigner(b"other-secret-0123456789").verify(token, now=NOW)
    with pytest.raises(RatingError) as expired:
        signer.verify(token, now=NOW + timedelta(days=15))
    assert expired.value.reason == "expired"


@pytest.mark.parametrize("customer", ["", "   ", "crm-\x00", "c" * 201])
def test_links_only_for_customers_an_event_can_hold(customer: str) -> None:
    signer = RatingSigner(b"s" * 32)
    with pytest.raises(RatingError) as caught:
        signer.issue(customer=customer, survey="nps", expires_at=NOW + timedelta(days=1))
    assert caught.value.reason == "customer"
    # A genuine link with such a customer (signed before the check) is refused, not a 500.
    payload = _b64(orjson.dumps({"c": customer, "s": "nps", "e": 4_000_000_000, "n": "x"}))
    forged_by_us = f"{payload}.{signer._sign(payload)}"
    with pytest.raises(RatingError) as caught:
        signer.verify(forged_by_us, now=NOW)
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize(
    ("survey", "score", "ok"),
    [
        ("nps", 0, True),
        ("nps", 10, True),
        ("nps", 11, False),
        ("csat", 0, False),
        ("csat", 5, True),
        ("ces", 7, True),
        ("ces", 8, False),
    ],
)
def test_score_ranges(survey: str, score: int, ok: bool) -> None:
    if ok:
        check_score(survey, score)
    else:
        with pytest.raises(RatingError):
            check_score(survey, score)


def test_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_secret(None, tmp_path / "data")
    assert load_secret(None, tmp_path / "data") == first
    assert (tmp_path / "data" / "collector-rating.secret").stat().st_mode & 0o777 == 0o600
    assert load_secret("configured-secret-value", tmp_path / "data") == b"configured-secret-value"


def test_cli_prints_a_verifiable_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CX_COLLECTOR_RATING_SECRET", raising=False)
    monkeypatch.setenv("CX_COLLECTOR_PUBLIC_URL", "https://feedback.shop.example")
    status = main(["rating-link", "--customer", "crm-7", "--survey", "ces", "--days", "3"])
    assert status == 0
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert link.startswith("https://feedback.shop.example/v1/channels/email/rate?t=")
    assert link.endswith("&score=")
    token = parse_qs(urlsplit(link + "5").query)["t"][0]
    claim = RatingSigner(load_secret(None, tmp_path)).verify(token)
    assert (claim.customer, claim.survey) == ("crm-7", "ces")
    assert claim.expires_at - datetime.now(UTC) < timedelta(days=3, seconds=5)

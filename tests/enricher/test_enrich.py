"""The pure enrichment of one event, and the processor's decode and output records."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from cxloop_enricher.enrich import Enricher
from cxloop_enricher.language import detect_language
from cxloop_enricher.pii import Redactor
from cxloop_enricher.processor import EnrichProcessor
from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.sentiment.features import FeatureConfig
from cxloop_enricher.sentiment.training import TrainingConfig, train
from cxloop_enricher.taxonomy import build_taxonomy
from cxloop_enricher.touchpoints import TouchpointTagger
from cxruntime.consumer import Consumed, Decoded, InvalidMessage
from cxschema import (
    ENRICHED,
    TYPE_ENRICHED,
    FeedbackEnriched,
    decode_enriched,
    encode,
    header_value,
)
from tests.enricher.helpers import (
    default_enricher,
    raw_event,
    raw_record,
    record_encoder_calls,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return default_enricher()


def test_an_event_gets_touchpoint_stage_team_language_and_sentiment(enricher: Enricher) -> None:
    event = raw_event(comment="Die Lieferung kam drei Tage zu spät, sehr ärgerlich.")
    out = enricher.enrich(event, now=NOW).event
    assert (out.touchpoint, out.journey_stage, out.owner_team) == (
        "delivery.delay",
        "delivery",
        "logistics",
    )
    assert out.language == "de"
    assert out.sentiment.label == "negative"
    assert -1.0 <= out.sentiment.score < 0
    assert out.enriched_at == NOW
    assert (out.id, out.source, out.received_at, out.scores) == (
        event.id,
        event.source,
        event.received_at,
        event.scores,
    )


def test_personal_data_leaves_comment_and_subject(enricher: Enricher) -> None:
    event = raw_event(
        channel="email",
        comment="Bitte zurückrufen: 0171 1234567 oder max@example.de. IBAN DE89370400440532013000",
        context={
            "subject": "Re: Rückruf an jane@example.com",
            "url": "https://x.example/?m=a@b.de&tel=%2B4930123456&order=0171234567",
        },
    )
    out = enricher.enrich(event, now=NOW).event
    assert out.comment == "Bitte zurückrufen: [PHONE] oder [EMAIL]. IBAN [IBAN]"
    assert out.context.subject == "Re: Rückruf an [EMAIL]"
    assert out.context.url == "https://x.example/?m=[EMAIL]&tel=[PHONE]&order=0171234567"
    assert out.redactions == {"phone": 2, "email": 3, "iban": 1}
    assert "example.de" not in encode(out).decode()


def test_names_and_addresses_leave_before_sentiment_and_touchpoint(enricher: Enricher) -> None:
    event = raw_event(
        comment="Frau Gut von der Hotline war unfreundlich. Lieferung an Musterstraße 5 kam nie."
        "\nViele Grüße\nMax Mustermann",
        language="de",
    )
    out = enricher.enrich(event, now=NOW).event
    assert out.comment == (
        "Frau [NAME] von der Hotline war unfreundlich. Lieferung an [ADDRESS] kam nie."
        "\nViele Grüße\n[NAME]"
    )
    assert out.redactions == {"name": 2, "address": 1}
    # "Gut" was a name, not praise: what is left is a complaint.
    assert out.sentiment.label == "negative"


def _team_enricher(rules: list[dict[str, object]]) -> Enricher:
    """An enricher on a small team taxonomy with a `pii` pattern of its own."""
    taxonomy = build_taxonomy(
        {
            "touchpoints": [
                {"id": "phone", "name": "Phone sales", "stage": "purchase", "team": "sales"},
                {"id": "unclassified", "name": "Other", "stage": "unknown"},
            ],
            "rules": rules,
            "pii": {"patterns": [{"name": "contract", "regex": r"VN-\d{6}"}]},
        },
        source="test",
    )
    return Enricher(
        tagger=TouchpointTagger(taxonomy),
        redactor=Redactor(taxonomy.pii_patterns),
        analyzer=SentimentAnalyzer.default(),
        detect_language=detect_language,
    )


@pytest.mark.parametrize(
    ("comment", "subject", "touchpoint"),
    [
        # The placeholders are not the customer's words: no rule reads "[PHONE]" as "phone".
        ("Bitte rufen Sie mich an: 0171 1234567", "", "unclassified"),
        ("Rückruf an max@example.de", "", "unclassified"),
        ("Herr Schulz war freundlich", "", "unclassified"),
        ("Vertrag VN-123456 gekündigt", "", "unclassified"),
        ("Frage", "Re: Rückruf 0171 1234567", "unclassified"),
        # The customer's own words still match, next to a placeholder too.
        ("Per phone: 0171 1234567, my name is Jane Doe", "", "phone"),
        ("Frage", "Phone: 0171 1234567", "phone"),
    ],
)
def test_rules_do_not_match_placeholders(comment: str, subject: str, touchpoint: str) -> None:
    enricher = _team_enricher(
        [
            {"name": "words", "touchpoint": "phone", "text": ["phone", "email", "name"]},
            {"name": "contract", "touchpoint": "phone", "comment": ["contract"]},
        ]
    )
    event = raw_event(comment=comment, context={"subject": subject}, language="de")
    out = enricher.enrich(event, now=NOW)
    assert out.event.touchpoint == touchpoint
    # The enriched event keeps the placeholders: only the rules read past them.
    assert out.event.redactions


def test_language_is_detected_from_the_customers_words(enricher: Enricher) -> None:
    event = raw_event(comment="Herr Müller, Musterstraße 5", language=None)
    out = enricher.enrich(event, now=NOW).event
    assert out.comment == "Herr [NAME], [ADDRESS]"
    assert out.language == "de"
    # "[EMAIL] [PHONE]" would read as English.
    only_placeholders = raw_event(comment="max@example.de 0171 1234567", language=None)
    assert enricher.enrich(only_placeholders, now=NOW).event.language == "und"


def test_an_event_without_comment_is_neutral_zero(enricher: Enricher) -> None:
    event = raw_event(comment=None, scores={"nps": 0}, language="en")
    out = enricher.enrich(event, now=NOW).event
    assert (out.sentiment.label, out.sentiment.score) == ("neutral", 0.0)
    assert out.language == "en"
    assert out.comment is None
    assert out.redactions == {}


def test_an_event_without_comment_or_hint_has_undetermined_language(enricher: Enricher) -> None:
    out = enricher.enrich(raw_event(comment=None, scores={"csat": 2}), now=NOW).event
    assert (out.language, out.touchpoint) == ("und", "unclassified")


def test_the_hint_decides_the_touchpoint(enricher: Enricher) -> None:
    out = enricher.enrich(raw_event(touchpoint="billing", comment="Paket kam zu spät"), now=NOW)
    assert (out.event.touchpoint, out.tagging.via) == ("billing", "hint")


def test_a_redacted_comment_stays_within_the_limit(enricher: Enricher) -> None:
    from cxloop_enricher.pii import Redactor
    from cxloop_enricher.settings import PiiPatternSetting

    long = Enricher(
        tagger=enricher.tagger,
        redactor=Redactor([PiiPatternSetting(name="x", regex="x", placeholder="[LONG-X]")]),
        analyzer=enricher.analyzer,
        detect_language=enricher.detect_language,
    )
    out = long.enrich(raw_event(comment="x" * 5000), now=NOW).event
    assert len(out.comment or "") == 5000
    assert out.redactions == {"x": 5000}


def _consumed(value: bytes | None, key: bytes | None = b"k", headers: tuple = ()) -> Consumed:
    return Consumed("cx.feedback.raw.v1", 0, 7, key, value, headers, 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record value"),
        (b"", "empty record value"),
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "not a valid FeedbackReceived"),
        (orjson.dumps({"channel": "web", "scores": {"nps": 3}}), "id: Field required"),
        (
            encode(raw_event()).replace(b'"nps":3', b'"nps":11'),
            "scores.nps: Input should be less than or equal to 10",
        ),
    ],
)
def test_decode_refuses_with_a_reason(enricher: Enricher, value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        EnrichProcessor(enricher).decode(_consumed(value))
    assert reason in info.value.reason


async def test_output_keeps_key_and_headers_and_sets_the_type(enricher: Enricher) -> None:
    event = raw_event(customer=None)
    key, value, headers = raw_record(event)
    processor = EnrichProcessor(enricher, clock=lambda: NOW)
    record = _consumed(value, key, tuple(headers))
    (out,) = await processor.handle([Decoded(record, processor.decode(record))], {})
    assert (out.topic, out.key) == (ENRICHED, key)
    assert header_value(out.headers, "ce_type") == TYPE_ENRICHED
    assert header_value(out.headers, "ce_id") == event.id
    assert header_value(out.headers, "ce_source") == event.source
    assert header_value(out.headers, "traceparent") == header_value(headers, "traceparent")
    assert [k for k, _ in out.headers].count("ce_type") == 1
    enriched = decode_enriched(out.value)
    assert isinstance(enriched, FeedbackEnriched)
    assert enriched.enriched_at == NOW


async def test_prepare_encodes_only_redacted_comments_and_changes_no_answer(
    enricher: Enricher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a model using sentence embeddings, a batch's comments are encoded in one call
    before decoding; the encoder never sees personal data, bad records are left to `decode`."""
    from cxloop_enricher.sentiment import embedding

    texts = ["schnell und freundlich", "zu spät und kaputt", "ganz okay"] * 4
    labels = ["positive", "negative", "neutral"] * 4
    model = train(
        texts,
        labels,
        ["de"] * len(texts),
        features=FeatureConfig(bits=12, embedding=embedding.USE_MULTILINGUAL),
        training=TrainingConfig(iterations=30, l2=1e-2),
    )
    with_model = Enricher(
        tagger=enricher.tagger,
        redactor=enricher.redactor,
        analyzer=SentimentAnalyzer(model),
        detect_language=enricher.detect_language,
    )
    events = [
        raw_event(comment="Bitte rufen Sie mich an: max.muster@example.de. Danke!"),
        raw_event(comment="Das Paket war beschädigt."),
        raw_event(comment=None, scores={"nps": 9}),
    ]
    records = [_consumed(None), _consumed(b"{not json")] + [
        _consumed(raw_record(event)[1]) for event in events
    ]
    plain = EnrichProcessor(with_model, clock=lambda: NOW)
    expected = [plain.decode(record).event for record in records[2:]]

    embedding.forget()
    calls = record_encoder_calls(monkeypatch)
    processor = EnrichProcessor(with_model, clock=lambda: NOW)
    await processor.prepare(records)
    assert calls == [["Bitte rufen Sie mich an: [EMAIL].", "Danke!", "Das Paket war beschädigt."]]
    got = [processor.decode(record).event for record in records[2:]]
    assert len(calls) == 1  # decoding found every sentence encoded
    for one, other in zip(got, expected, strict=True):
        assert one.sentiment.label == other.sentiment.label
        assert one.sentiment.score == pytest.approx(other.sentiment.score, abs=1e-3)
        assert one.comment == other.comment
    # The shipped tagger has nothing to prepare.
    await EnrichProcessor(enricher).prepare(records)
    assert len(calls) == 1

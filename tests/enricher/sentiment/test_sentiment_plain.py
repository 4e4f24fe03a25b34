"""The plain-Python scorer agrees with the NumPy feature path it replaces for word-only models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxloop_enricher.sentiment import features as features_module
from cxloop_enricher.sentiment import plain as plain_module
from cxloop_enricher.sentiment.analyzer import shipped_models
from cxloop_enricher.sentiment.features import FeatureConfig, featurize_scored
from cxloop_enricher.sentiment.model import LinearModel
from cxloop_enricher.sentiment.plain import PlainScorer

TEXTS = [
    "Great service, the agent solved my problem in five minutes!",
    "Not bad at all, but the checkout is confusing.",
    "bad bad bad, really really bad",  # repeated terms: sublinear term frequency
    "The app keeps crashing when I try to log in. Terrible.",
    "😍😍",  # no word at all: only the dense block
    "",
    "Why?? Still waiting for my refund after three weeks!!!",
    "I don't like it, I don't love it, it is not good and not terrible either",
    "Die Lieferung kam nicht an, aber der Service war super.",
]


def reference(model: LinearModel, text: str, language: str) -> list[float]:
    """Probabilities by the NumPy path: `featurize_scored`, a matrix product, a softmax."""
    index, value, _ = featurize_scored(text, language, model.config, model.idf)
    logits = (value.astype(np.float64) @ model.weights[index].astype(np.float64)).tolist()
    top = max(logits)
    exp = [math.exp(logit - top) for logit in logits]
    return [e / sum(exp) for e in exp]


def random_model(classes: int, *, lexicon: bool, idf: bool) -> LinearModel:
    config = FeatureConfig(bits=12, char_min=2, char_max=1, lexicon=lexicon, idf=idf, scheme=2)
    rng = np.random.default_rng(7)
    weights = rng.normal(0, 1, (config.size, classes)).astype(np.float32)
    frequencies = rng.uniform(0, 3, config.hashed).astype(np.float32) if idf else None
    return LinearModel(tuple(f"c{i}" for i in range(classes)), config, weights, frequencies)


def test_the_shipped_english_model_scores_as_with_numpy() -> None:
    model = shipped_models()["en"]
    assert PlainScorer.fits(model.config)
    plain = PlainScorer(model.config, model.weights, model.idf)
    for text in TEXTS:
        probabilities, lexical = plain.predict(text, "en")
        assert probabilities == pytest.approx(reference(model, text, "en"), abs=1e-6)
        assert lexical == featurize_scored(text, "en", model.config, model.idf)[2]


@pytest.mark.parametrize(
    ("classes", "lexicon", "idf"), [(4, True, True), (2, False, True), (3, False, False)]
)
def test_other_shapes_score_as_with_numpy(classes: int, lexicon: bool, idf: bool) -> None:
    model = random_model(classes, lexicon=lexicon, idf=idf)
    plain = PlainScorer(model.config, model.weights, model.idf)
    for text in TEXTS:
        for language in ("en", "de"):
            expected = reference(model, text, language)
            assert plain.predict(text, language)[0] == pytest.approx(expected, abs=1e-6)


def test_features_training_never_saw_and_emptied_caches_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = random_model(3, lexicon=True, idf=True)
    assert model.idf is not None
    model.idf[::3] = 0.0  # a third of the features unseen in training (idf 0)
    plain = PlainScorer(model.config, model.weights, model.idf)
    first = [plain.predict(text, language)[0] for text in TEXTS for language in ("en", "de")]
    for text in TEXTS:
        assert plain.predict(text, "en")[0] == pytest.approx(reference(model, text, "en"), abs=1e-6)
    # Caches of one entry: every look-up misses and refills them, and the answers stay equal.
    monkeypatch.setattr(plain_module, "_ROW_CACHE_SIZE", 1)
    monkeypatch.setattr(features_module, "_UNIGRAM_CACHE_SIZE", 1)
    monkeypatch.setattr(features_module, "_unigrams", {})
    again = PlainScorer(model.config, model.weights, model.idf)
    assert [
        again.predict(text, language)[0] for text in TEXTS for language in ("en", "de")
    ] == first
    assert len(features_module._unigrams) <= 1


def test_models_with_character_ngrams_are_left_to_numpy() -> None:
    config = FeatureConfig(bits=12, char_min=2, char_max=5, scheme=2)
    assert not PlainScorer.fits(config)
    assert not PlainScorer.fits(FeatureConfig(bits=12, char_min=2, char_max=1, scheme=1))
    with pytest.raises(ValueError, match="word-only"):
        PlainScorer(config, np.zeros((config.size, 3), np.float32), None)

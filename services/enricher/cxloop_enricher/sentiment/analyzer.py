"""The sentiment analyzer the enricher calls: the shipped tagger (lexicon engine, plus a shipped
model for English) or a model trained with `cxloop sentiment train`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cxloop_enricher.sentiment.embedding import embed
from cxloop_enricher.sentiment.engine import LexiconScore, score_text
from cxloop_enricher.sentiment.model import LinearModel
from cxloop_enricher.sentiment.plain import PlainScorer
from cxloop_enricher.sentiment.result import LABELS, Label, SentimentResult, clamp

SHIPPED_SUFFIX = "_model.npz"
NO_OPINION = SentimentResult("neutral", 0.0)
_LABEL_NAMES: dict[str, Label] = {name: name for name in LABELS}

# Compound scores inside (NEGATIVE, POSITIVE) are neutral. Chosen on the English VADER tweets
# and movie snippets (MIT), never on German data: positive words often occur in texts without a
# positive opinion ("gern", "gut 10 Minuten"), negative words rarely occur without a negative
# one, hence the lopsided band.
POSITIVE = 0.35
NEGATIVE = -0.05
# Mixed: both sides carry at least this much valence and the weaker is at least this share
# of the stronger.
MIXED_MASS = 2.0
MIXED_RATIO = 0.5
# A shipped model's polar answer for a text without an opinion word in the lexicon needs more
# than this probability (else neutral).
UNSURE = 0.5
# A shipped model's text of at most this many words that holds an opinion word gets the lexicon
# engine's answer (5-fold CV on the Amazon snippets: 0.6224 against 0.6239; tweets 0.7162
# against 0.7155).
SHORT_WORDS = 2
_WORD = re.compile(r"[^\W\d_]+")


def _at_most_words(text: str, limit: int) -> bool:
    """True when `text` has at most `limit` words (cheap for long texts)."""
    return text.count(" ") <= 2 * limit + 2 and len(_WORD.findall(text)) <= limit


Predict = Callable[[str, str], tuple[Iterable[float], LexiconScore | None]]
"""(text, language) -> class probabilities and, if the model uses it, the lexicon's score."""


def predictor(model: LinearModel) -> Predict:
    """The fastest way to score with `model`: plain Python for word-only models (the shipped
    English one), NumPy otherwise (see `plain`)."""
    if PlainScorer.fits(model.config):
        return PlainScorer(model.config, model.weights, model.idf).predict
    return model.predict


def _polarity(
    classes: Sequence[str], probabilities: Iterable[float], digits: int | None = 4
) -> float:
    """P(positive) - P(negative) of a model's answer (rounded to `digits`, unless None)."""
    named = dict(zip(classes, probabilities, strict=True))
    polarity = float(named.get("positive", 0.0)) - float(named.get("negative", 0.0))
    return polarity if digits is None else round(polarity, digits)


def _is_mixed(result: LexiconScore) -> bool:
    weaker = min(result.positive, result.negative)
    return weaker >= MIXED_MASS and weaker >= MIXED_RATIO * max(result.positive, result.negative)


def label_lexicon(result: LexiconScore) -> SentimentResult:
    """Label and score from the lexicon engine's output."""
    score = round(clamp(result.compound), 4)
    label: Label
    if _is_mixed(result):
        label = "mixed"
    elif score >= POSITIVE:
        label = "positive"
    elif score <= NEGATIVE:
        label = "negative"
    else:
        label = "neutral"
    return SentimentResult(label, score)


@cache
def shipped_models() -> dict[str, LinearModel]:
    """The models shipped as package data (data/<language>_model.npz), by language."""
    models: dict[str, LinearModel] = {}
    for entry in resources.files(__package__).joinpath("data").iterdir():
        name = entry.name
        if name.endswith(SHIPPED_SUFFIX):
            with resources.as_file(entry) as path:
                models[name.removesuffix(SHIPPED_SUFFIX)] = LinearModel.load(path)
    return models


class SentimentAnalyzer:
    """Labels texts negative, neutral, positive or mixed with a score in [-1, 1].

    With a `model`, every text goes through it; otherwise texts in a language with a model in
    `language_models` go through that one and all others through the lexicon engine.
    """

    def __init__(
        self,
        model: LinearModel | None = None,
        *,
        language_models: Mapping[str, LinearModel] | None = None,
    ) -> None:
        self._model = model
        self._predict = predictor(model) if model is not None else None
        shipped = dict(language_models or {})
        self._language_models = {language: predictor(m) for language, m in shipped.items()}
        self._shipped_classes = {language: m.classes for language, m in shipped.items()}

    @classmethod
    def default(cls) -> SentimentAnalyzer:
        """The shipped tagger: lexicons with rules (German, English) and shipped models."""
        return cls(language_models=shipped_models())

    @classmethod
    def load(cls, path: str | Path) -> SentimentAnalyzer:
        """An analyzer using a model written by `cxloop sentiment train`."""
        return cls(LinearModel.load(path))

    @property
    def model(self) -> LinearModel | None:
        """The trained model, None for the shipped tagger."""
        return self._model

    @property
    def batches(self) -> bool:
        """True if scoring many texts is cheaper after `prepare` (a model with embeddings)."""
        return self._model is not None and bool(self._model.config.embedding)

    def prepare(self, texts: Sequence[str]) -> None:
        """Encode the sentences of `texts` ahead, in one call to the sentence encoder, so that
        `analyze` finds them encoded (about half the cost per short comment of one call per
        comment; long comments gain less). Nothing to do for models without embeddings;
        answers do not change."""
        if self.batches:
            assert self._model is not None  # `batches` holds only for a model with an encoder
            embed(texts, self._model.config.embedding)

    def analyze_many(
        self, texts: Sequence[str], languages: Sequence[str], *, chunk: int = 256
    ) -> list[SentimentResult]:
        """`analyze` of each text, `chunk` texts prepared at a time (see `prepare`)."""
        results: list[SentimentResult] = []
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            self.prepare(part)
            results += map(self.analyze, part, languages[start : start + chunk])
        return results

    def analyze(self, text: str, language: str) -> SentimentResult:
        """Sentiment of `text` written in `language` (ISO 639-1)."""
        if not text or text.isspace():
            return NO_OPINION
        if self._model is not None and self._predict is not None:
            return self._label_model(text, language, self._model.classes, self._predict)
        shipped = self._language_models.get(language)
        if shipped is not None:
            return self._label_shipped(text, language, self._shipped_classes[language], shipped)
        return label_lexicon(score_text(text, language))

    def explain(self, text: str, language: str) -> dict[str, Any]:
        """What moved the score of `text`, for `cxloop sentiment score --explain`: the lexicon
        engine's compound and each valenced word, phrase or emoji with the value it added
        (after negation, intensifiers and contrast weights), and the shipped or trained
        model's P(positive) - P(negative) where a model takes part. A trained model's answer
        is the model's alone, so it gets only that."""
        if not text or text.isspace():
            return {"terms": []}
        if self._model is not None and self._predict is not None:
            return {"model": _polarity(self._model.classes, self._predict(text, language)[0])}
        trace: list[tuple[str, float]] = []
        lexical = score_text(text, language, trace)
        explained: dict[str, Any] = {"lexicon": round(lexical.compound, 4)}
        if lexical.scale != 1.0:  # a long German text: every term's value was scaled by this
            explained["scale"] = round(lexical.scale, 3)
        shipped = self._language_models.get(language)
        if shipped is not None:
            probabilities = shipped(text, language)[0]
            explained["model"] = _polarity(self._shipped_classes[language], probabilities)
        explained["terms"] = [[term, round(value, 3)] for term, value in trace]
        return explained

    @staticmethod
    def _label_shipped(
        text: str, language: str, classes: Sequence[str], predict: Predict
    ) -> SentimentResult:
        # The shipped model's likeliest class, as for a trained model; its features include
        # the lexicon engine's scores, so negation, contrast and emoji reach it. `mixed` is the
        # engine's call, as in every language: the model never learned that label. Where the
        # engine finds no opinion word, a polar answer needs the model's majority: a product
        # snippet's words make "The package was delivered on Monday." lean negative.
        probabilities, lexical = predict(text, language)
        if lexical is None:
            lexical = score_text(text, language)
        if (lexical.positive or lexical.negative) and _at_most_words(text, SHORT_WORDS):
            # One or two words ("Top", "Top Service", "Wrong size"): too little for the model,
            # which learned "top" from complaints about lids; the engine's word decides.
            return label_lexicon(lexical)
        result = _likeliest(classes, probabilities)
        if _is_mixed(lexical):
            return SentimentResult("mixed", result.score)
        if result.label != "neutral" and not (lexical.positive or lexical.negative):
            named = dict(zip(classes, probabilities, strict=True))
            if named[result.label] <= UNSURE:
                return SentimentResult("neutral", result.score)
        return result

    @staticmethod
    def _label_model(
        text: str, language: str, classes: Sequence[str], predict: Predict
    ) -> SentimentResult:
        # The likeliest of the team's own labels: `mixed` only from a model trained with it.
        # (Calling a text mixed whenever both polar classes reached 0.30 cost 0.013 macro-F1 on
        # GermEval and 0.021 on the Amazon snippets in cross-validation.)
        return _likeliest(classes, predict(text, language)[0])


def _likeliest(classes: Sequence[str], probabilities: Iterable[float]) -> SentimentResult:
    """The class with the highest probability, scored P(positive) - P(negative)."""
    named = dict(zip(classes, probabilities, strict=True))
    score = round(clamp(_polarity(classes, named.values(), digits=None)), 4)
    best = max(named, key=lambda name: named[name])
    return SentimentResult(_LABEL_NAMES.get(best, "neutral"), score)

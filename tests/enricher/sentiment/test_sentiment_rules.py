"""The rule-based tagger: lexicon hits, negation, intensifiers, contrast, emoji, labels."""

import pytest

from cxloop_enricher.sentiment import LABELS, SentimentAnalyzer, SentimentResult
from cxloop_enricher.sentiment.analyzer import (
    NEGATIVE,
    POSITIVE,
    UNSURE,
    label_lexicon,
    shipped_models,
)
from cxloop_enricher.sentiment.engine import LexiconScore, score_text

analyzer = SentimentAnalyzer.default()


def label(text: str, language: str) -> str:
    return analyzer.analyze(text, language).label


def _squashed(total: float) -> float:
    """The engine's squash of a sum into [-1, 1], written out."""
    return total / (total * total + 15) ** 0.5


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Super Service, sehr freundliche Mitarbeiter!", "de", "positive"),
        ("Lieferung kam pünktlich, alles bestens.", "de", "positive"),
        ("Die Lieferung kam drei Tage zu spät.", "de", "negative"),
        ("Unverschämt, nie wieder!", "de", "negative"),
        ("Die Hotline ist eine Katastrophe, ewige Warteschleife.", "de", "negative"),
        ("Ich habe am Dienstag bestellt.", "de", "neutral"),
        ("Great service, the parcel arrived on time.", "en", "positive"),
        ("Terrible support, I waited for hours.", "en", "negative"),
        ("I ordered a blue jacket on Monday.", "en", "neutral"),
    ],
)
def test_examples(text: str, language: str, expected: str) -> None:
    assert label(text, language) == expected


def test_negation_flips_and_damps() -> None:
    good = score_text("gut", "de").compound
    assert score_text("nicht gut", "de").compound < 0 < good
    assert abs(score_text("nicht gut", "de").compound) < good
    assert score_text("nicht schlecht", "de").compound > 0
    assert score_text("not bad", "en").compound > 0
    assert score_text("not good", "en").compound < 0
    assert score_text("The app doesn't work well", "en").compound <= 0


def test_german_clause_final_negation() -> None:
    assert score_text("Das gefällt mir nicht.", "de").compound < 0
    assert score_text("Das gefällt mir.", "de").compound > 0


def test_negation_phrases() -> None:
    assert label("Kein Problem, gerne wieder!", "de") == "positive"
    assert label("no problem at all", "en") == "positive"
    assert label("nie wieder", "de") == "negative"
    assert label("never again", "en") == "negative"


def test_a_parcel_that_never_came_is_a_complaint_in_every_word_order() -> None:
    # The participle ("nie angekommen") and the separable verb ("kam nie an") alike.
    for text in (
        "Paket nie angekommen",
        "Paket kam nie an",
        "Die Lieferung kommt nicht an",
        "Ware nie erhalten",
        "Ich habe die Bestellung nie bekommen",
    ):
        assert label(text, "de") == "negative", text


def test_intensifiers_scale() -> None:
    plain, boosted = score_text("freundlich", "de").compound, score_text("sehr freundlich", "de")
    assert boosted.compound > plain
    assert (
        score_text("extrem unfreundlich", "de").compound < score_text("unfreundlich", "de").compound
    )
    assert score_text("very good", "en").compound > score_text("good", "en").compound
    assert score_text("etwas langsam", "de").compound > score_text("langsam", "de").compound


def test_intensifier_alone_is_an_opinion() -> None:
    assert label("super", "de") == "positive"
    assert score_text("super freundlich", "de").hits == 1


def test_contrast_weights_the_second_clause() -> None:
    assert label("Die Ware ist gut, aber der Versand war eine Katastrophe.", "de") == "negative"
    assert label("Der Versand dauerte lange, aber die Ware ist top!", "de") == "positive"
    assert label("The food was good but the delivery was terrible", "en") == "negative"
    assert label("Delivery was slow but the staff were wonderful", "en") == "positive"


def test_emoji_and_emoticons() -> None:
    assert label("😡😡", "de") == "negative"
    assert label("Paket ist da 😍", "de") == "positive"
    assert label("Danke :)", "de") == "positive"
    assert label("Wieder kein Paket :(", "de") == "negative"
    assert label("Delivered 👍", "en") == "positive"


def test_capitals_and_exclamations_amplify() -> None:
    assert score_text("SCHLECHT", "de").compound < score_text("schlecht", "de").compound
    assert score_text("gut!!!", "de").compound > score_text("gut", "de").compound


def test_compound_words() -> None:
    assert score_text("Zugverspätung", "de").compound < 0
    assert score_text("Servicewüste", "de").compound <= 0


def test_mixed() -> None:
    result = analyzer.analyze(
        "Das Personal war super freundlich und hilfsbereit, aber die Lieferung war eine "
        "absolute Katastrophe und total verspätet.",
        "de",
    )
    assert result.label in {"mixed", "negative"}
    assert label_lexicon(LexiconScore(0.0, 3.0, 2.5, 2)).label == "mixed"
    assert label_lexicon(LexiconScore(0.6, 3.0, 0.5, 2)).label == "positive"


@pytest.mark.parametrize(
    ("compound", "expected"),
    [
        (POSITIVE, "positive"),
        (POSITIVE - 0.01, "neutral"),
        (0.0, "neutral"),
        (NEGATIVE + 0.01, "neutral"),
        (NEGATIVE, "negative"),
        (-1.0, "negative"),
        (1.0, "positive"),
    ],
)
def test_label_thresholds(compound: float, expected: str) -> None:
    result = label_lexicon(LexiconScore(compound, max(compound, 0) * 4, max(-compound, 0) * 4, 1))
    assert result.label == expected
    assert result.score == pytest.approx(compound, abs=1e-4)


def test_results_are_bounded_and_frozen() -> None:
    texts = ["", "!!!", "😡" * 50, "super " * 200, "schlecht " * 200, "http://x.y @someone"]
    for text in texts:
        result = analyzer.analyze(text, "de")
        assert isinstance(result, SentimentResult)
        assert result.label in LABELS
        assert -1.0 <= result.score <= 1.0
    assert analyzer.analyze("", "en") == SentimentResult("neutral", 0.0)
    assert analyzer.analyze(" \t", "de") == SentimentResult("neutral", 0.0)
    with pytest.raises(AttributeError):
        result.score = 2.0  # type: ignore[misc]


def test_unknown_language_uses_emoji_and_english() -> None:
    assert label("👍👍", "fr") == "positive"
    assert label("terrible", "xx") == "negative"


def test_shipped_english_model_answers_its_likeliest_class() -> None:
    shipped = shipped_models()
    assert set(shipped) == {"en"}
    model = shipped["en"]
    assert model.classes == ("negative", "neutral", "positive")
    texts = [
        "The parcel arrived damaged and support never answered.",
        "I ordered a blue jacket on Monday.",
        "Absolutely love it, would buy again!",
        "not bad at all",
    ]
    seen = set()
    for text in texts:
        probabilities, lexical = model.predict(text, "en")
        assert lexical is not None
        assert lexical == score_text(text, "en")  # the rules reach the model as features
        result = analyzer.analyze(text, "en")
        assert result.score == pytest.approx(probabilities[2] - probabilities[0], abs=1e-4)
        assert result.label == model.classes[max(range(3), key=lambda i: probabilities[i])]
        seen.add(result.label)
    assert seen == {"negative", "neutral", "positive"}
    # A polar label and its score agree in sign.
    assert analyzer.analyze(texts[0], "en").score < 0 < analyzer.analyze(texts[2], "en").score
    lexicon_only = SentimentAnalyzer()
    german = "Paket kam beschädigt an"
    assert analyzer.analyze(german, "de") == lexicon_only.analyze(german, "de")


def test_without_an_opinion_word_a_polar_answer_needs_the_models_majority() -> None:
    model = shipped_models()["en"]
    # No lexicon word in either; the model leans negative in both, sure of it only in one.
    factual = "The package was delivered on Monday."
    probabilities, lexical = model.predict(factual, "en")
    assert lexical is not None
    assert lexical.positive == lexical.negative == 0
    assert max(probabilities) == probabilities[0] <= UNSURE
    assert analyzer.analyze(factual, "en") == SentimentResult(
        "neutral", round(probabilities[2] - probabilities[0], 4)
    )
    complaint = "Returned it after two days."
    probabilities, _ = model.predict(complaint, "en")
    assert probabilities[0] > UNSURE
    assert label(complaint, "en") == "negative"


def test_one_or_two_english_words_get_the_engines_answer() -> None:
    # The model learned "top" from complaints about lids and leans negative on "Top" alone.
    for text in ("Top", "Top Service", "Wrong size", "Works fine"):
        assert analyzer.analyze(text, "en") == label_lexicon(score_text(text, "en")), text
    assert label("Top Service", "en") != "negative"
    # Without an opinion word the model still decides (and the majority rule applies).
    probabilities, _ = shipped_models()["en"].predict("It arrived.", "en")
    assert analyzer.analyze("It arrived.", "en").score == round(
        probabilities[2] - probabilities[0], 4
    )


def test_mixed_is_the_engines_call_in_english_too() -> None:
    text = "Great product, terrible delivery."
    probabilities, _ = shipped_models()["en"].predict(text, "en")
    result = analyzer.analyze(text, "en")
    assert result == SentimentResult("mixed", round(probabilities[2] - probabilities[0], 4))


def test_mixed_in_both_languages() -> None:
    assert label("Tolles Produkt, schreckliche Lieferung.", "de") == "mixed"
    assert label("Great product, terrible delivery.", "en") == "mixed"


def test_sentence_adverbs_are_not_negated() -> None:
    assert label("Das geht leider nicht.", "de") == "negative"
    assert label("Funktioniert leider nicht mehr.", "de") == "negative"


def test_negated_phrases_and_near_negators() -> None:
    assert label("Das Essen war nicht sehr gut.", "de") == "negative"
    assert label("Nicht sehr zu empfehlen.", "de") == "negative"
    assert label("Es war kein Problem.", "de") == "positive"
    assert label("Ohne Probleme angekommen.", "de") == "positive"
    # "ohne" governs its noun phrase, not the verb after it.
    assert label("Zug ohne Ankündigung ausgefallen.", "de") == "negative"
    assert label("Es hat sich niemand gekümmert.", "de") == "negative"


def test_clause_final_negation_with_mehr() -> None:
    assert score_text("Die App funktioniert nicht mehr.", "de").compound < 0
    assert score_text("Das gefällt mir nicht mehr.", "de").compound < 0


def test_opinion_intensifier_before_an_unvalenced_word() -> None:
    assert label("Super Idee!", "de") == "positive"
    assert score_text("super freundlich", "de").hits == 1


def test_german_adjective_forms() -> None:
    # Comparative and superlative, the e dropped before an ending, squeezed repeats.
    assert score_text("die schnellsten", "de").compound > 0
    assert score_text("die schönste", "de").compound > 0
    assert score_text("eine teure Reparatur", "de").compound < 0
    assert score_text("miserablen", "de").compound < 0
    assert score_text("suuuuper", "de").compound > 0
    assert score_text("toooll", "de").compound > 0


def test_german_hedges_and_complaint_formulas() -> None:
    assert label("Das hätte besser sein können.", "de") == "negative"
    assert label("Der Service lässt zu wünschen übrig.", "de") == "negative"
    assert label("Na toll, schon wieder Verspätung.", "de") == "negative"
    assert label("Besser geht nicht!", "de") == "positive"
    assert label("Macht Spaß.", "de") == "positive"


@pytest.mark.parametrize(
    ("text", "language", "terms"),
    [
        # Negation flips "gut"; the contrast halves what came before and weighs what follows.
        # A term is named with the negator and intensifiers that changed its value.
        (
            "Die Lieferung war nicht gut, aber der Service war super!!",
            "de",
            [("nicht gut", -0.703), ("super", 4.05), ("!!", 0.58)],
        ),
        ("Nie wieder 😡", "de", [("Nie wieder", -2.8), ("😡", -2.9)]),
        ("not bad", "en", [("not bad", 1.85)]),
        ("It was NOT very good", "en", [("NOT very good", -1.828)]),
        ("Das gefällt mir nicht.", "de", [("gefällt mir nicht", -1.406)]),
        (
            "Sehr freundlich, aber nicht sehr schnell",
            "de",
            [("Sehr freundlich", 1.3), ("nicht sehr schnell", -2.442)],
        ),
        # "leider" is never negated, so it is named alone.
        ("Nicht leider, sondern zum Glück", "de", [("leider", -1.2), ("Glück", 1.8)]),
        ("Ich habe am Dienstag bestellt.", "de", []),
    ],
)
def test_the_trace_names_what_moved_the_score(
    text: str, language: str, terms: list[tuple[str, float]]
) -> None:
    trace: list[tuple[str, float]] = []
    result = score_text(text, language, trace)
    assert [(term, round(value, 3)) for term, value in trace] == terms
    # The trace is the whole sum: squashed, it is the compound.
    assert result.compound == pytest.approx(_squashed(sum(value for _, value in trace)))
    assert result == score_text(text, language)  # tracing changes no answer


_TRIP = (
    "Wir sind am Montag mit dem Zug von Hamburg nach Berlin gefahren und haben dort die Tante "
    "besucht. "
)


def test_long_german_texts_need_a_denser_opinion() -> None:
    # 4 words: "gut" counts in full. 22 and 58 words: each valence is scaled by
    # sqrt(20 / words), so one "gut" in a long report of facts is no longer a positive text.
    assert score_text("Das Essen war gut.", "de").positive == 1.9
    for repeat, words in ((1, 22), (3, 58)):
        text = "Das Essen war gut. " + _TRIP * repeat
        trace: list[tuple[str, float]] = []
        result = score_text(text, "de", trace)
        assert trace == [("gut", pytest.approx(1.9 * (20 / words) ** 0.5))]
        assert result.positive == pytest.approx(1.9 * (20 / words) ** 0.5)
        assert result.scale == pytest.approx((20 / words) ** 0.5)
        # The trace still sums to the compound.
        assert result.compound == pytest.approx(_squashed(sum(value for _, value in trace)))
    assert label("Das Essen war gut. " + _TRIP, "de") == "positive"
    assert label("Das Essen war gut. " + _TRIP * 3, "de") == "neutral"
    # Exclamation marks are scaled with the words they amplify.
    loud = score_text("Das Essen war gut!! " + _TRIP * 3, "de")
    assert loud.compound == pytest.approx(_squashed((1.9 + 2 * 0.29) * (20 / 58) ** 0.5))
    # Long opinions stay opinions: the density is what counts.
    assert label(("Das Essen war gut, der Service super und das Zimmer schön. " * 5), "de") == (
        "positive"
    )


def test_english_texts_are_not_diluted() -> None:
    # English thresholds and the shipped English model were chosen without the scaling.
    long = "The food was good. " + "We took the train from Hamburg to Berlin and met her. " * 4
    assert score_text(long, "en") == score_text("The food was good.", "en")


def test_explain_shows_the_lexicon_terms_and_the_shipped_model() -> None:
    german = analyzer.explain("Nie wieder 😡", "de")
    assert german["lexicon"] == analyzer.analyze("Nie wieder 😡", "de").score
    assert german["terms"] == [["Nie wieder", -2.8], ["😡", -2.9]]
    assert "model" not in german  # German answers come from the lexicon engine alone
    english = analyzer.explain("not bad at all, but the app keeps crashing", "en")
    assert set(english) == {"lexicon", "model", "terms"}
    # The shipped English answer's score is the model's; the terms show what its lexicon
    # features saw.
    score = analyzer.analyze("not bad at all, but the app keeps crashing", "en").score
    assert score == pytest.approx(english["model"], abs=1e-4)
    assert english["terms"][0] == ["not bad", 0.925]  # halved before "but"
    assert analyzer.explain("  ", "de") == {"terms": []}
    # A long German text says by how much its terms were scaled; a short one has no scale.
    long = analyzer.explain("Das Essen war gut. " + _TRIP * 3, "de")
    assert long["scale"] == round((20 / 58) ** 0.5, 3)
    assert long["terms"] == [["gut", round(1.9 * (20 / 58) ** 0.5, 3)]]
    assert "scale" not in german

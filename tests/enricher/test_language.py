"""Language detection on short German and English comments, with and without hints."""

import pytest

from cxloop_enricher.language import UNDETERMINED, detect_language


@pytest.mark.parametrize(
    "text",
    [
        "Die Lieferung kam drei Tage zu spät.",
        "nie wieder",
        "Paket kam nicht an",
        "Alles prima, danke!",
        "Rechnung falsch",
        "Hotline unfreundlich",
        "Die App stürzt ständig ab",
        "Sehr gut",
    ],
)
def test_short_german_comments(text: str) -> None:
    assert detect_language(text) == "de"
    assert detect_language(text, hint="en") == "de"


@pytest.mark.parametrize(
    "text",
    [
        "The delivery was three days late.",
        "never again",
        "not good",
        "great service, thanks!",
        "Package never arrived",
        "delivery late",
    ],
)
def test_short_english_comments(text: str) -> None:
    assert detect_language(text) == "en"
    assert detect_language(text, hint="de") == "en"


@pytest.mark.parametrize("text", ["Top!", "super", "ok", "OK 👍", "10/10"])
def test_ambiguous_short_text_follows_the_hint(text: str) -> None:
    assert detect_language(text, hint="de") == "de"
    assert detect_language(text, hint="en-GB") == "en"


def test_ambiguous_short_text_without_hint_is_german_or_english() -> None:
    assert detect_language("Top!") in {"de", "en"}


def test_no_text() -> None:
    assert detect_language(None) == UNDETERMINED
    assert detect_language("") == UNDETERMINED
    assert detect_language("   ", hint="de_DE") == "de"
    assert detect_language(None, hint="EN") == "en"
    assert detect_language("!!!", hint="nonsense-hint") == UNDETERMINED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Le colis est arrivé en retard et le service client ne répond pas.", "fr"),
        ("El paquete llegó tarde y nadie contestó mis correos.", "es"),
        ("Het pakket kwam te laat en niemand nam de telefoon op.", "nl"),
    ],
)
def test_other_languages_on_longer_text(text: str, expected: str) -> None:
    assert detect_language(text) == expected
    assert detect_language(text, hint="de") == expected


def test_marker_word_agreeing_with_the_hint_decides_without_the_ngram_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One marker word plus a hint (or German letters) that agrees is enough; the n-gram
    model, the costliest step, is not consulted."""
    import cxloop_enricher.language as language

    def no_model() -> None:
        raise AssertionError("the n-gram model was consulted")

    monkeypatch.setattr(language, "_identifier", no_model)
    assert detect_language("Easy return, friendly staff.", hint="en") == "en"
    assert detect_language("Leider ausverkauft, schade.", hint="de") == "de"
    assert detect_language("Top Qualität, schnelle Lieferung 👍") == "de"


def test_german_letters_do_not_confirm_a_marker_word_of_another_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The marker word "the" votes English, "ü" points to German: the model decides."""
    import cxloop_enricher.language as language

    consulted: list[str] = []
    real = language._identifier()

    class Counting:
        def classify(self, text: str) -> tuple[str, float]:
            consulted.append(text)
            return real.classify(text)  # type: ignore[no-any-return]

        def rank(self, text: str) -> list[tuple[str, float]]:
            return real.rank(text)  # type: ignore[no-any-return]

    monkeypatch.setattr(language, "_identifier", Counting)
    assert detect_language("Grüße from the team", hint="en") in {"de", "en"}
    assert consulted == ["Grüße from the team"]

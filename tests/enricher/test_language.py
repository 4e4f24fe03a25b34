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

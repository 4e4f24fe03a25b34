"""The tokenizer: words, emoji, emoticons, punctuation; noise dropped."""

from cxloop_enricher.sentiment.tokens import Kind, kind, tokenize


def test_tokens_and_kinds() -> None:
    tokens = tokenize("Nie wieder!!! Lieferung zu spät :( 😡😡, aber danke xD - echt?")
    assert tokens == [
        "Nie", "wieder", "!!!", "Lieferung", "zu", "spät", ":(", "😡😡", ",", "aber",
        "danke", "xD", "-", "echt", "?",
    ]  # fmt: skip
    assert [kind(token) for token in tokens] == [
        Kind.WORD, Kind.WORD, Kind.EXCLAMATION, Kind.WORD, Kind.WORD, Kind.WORD, Kind.SYMBOL,
        Kind.SYMBOL, Kind.BREAK, Kind.WORD, Kind.WORD, Kind.SYMBOL, Kind.BREAK, Kind.WORD,
        Kind.QUESTION,
    ]  # fmt: skip


def test_noise_is_dropped() -> None:
    text = (
        "Schreib an [EMAIL] oder max@example.com, siehe https://shop.example/x?a=1 @support #fail"
    )
    assert tokenize(text) == ["Schreib", "an", "oder", ",", "siehe"]


def test_words_keep_case_apostrophes_and_hyphens() -> None:
    assert tokenize("DON'T buy the E-Bike") == ["DON'T", "buy", "the", "E-Bike"]

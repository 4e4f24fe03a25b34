"""Tokenisation shared by the lexicon engine and the n-gram features."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum


class Kind(IntEnum):
    """What a token is."""

    WORD = 0
    SYMBOL = 1  # an emoji or an emoticon
    BREAK = 2  # clause punctuation: , ; : .
    EXCLAMATION = 3
    QUESTION = 4


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its lower-cased text and whether it was written in capitals."""

    kind: Kind
    text: str
    shouted: bool = False


_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+|\S+@\S+\.\w+|\[[A-Z_]+\]")
_TOKEN = re.compile(
    r"(?P<emoticon>>:\(|:'\(|:-?\)+|:-?\(+|:-?[DP/]|;-?[)D]|[xX]D\b|<3|\^\^|-[._]-)"
    r"|(?P<word>[^\W_]+(?:['’-][^\W_]+)*)"
    r"|(?P<emoji>[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u2B55\u2705\u274C]"
    r"[\uFE0F\u200D\u2640\u2642\U0001F3FB-\U0001F3FF\U0001F300-\U0001FAFF]*)"
    r"|(?P<exclamation>!+)"
    r"|(?P<question>\?+)"
    r"|(?P<brk>[.,;:]+|\s[-–—]\s)"
)


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`; URLs, mentions, e-mail addresses and PII placeholders dropped."""
    text = _NOISE.sub(" ", text)
    tokens: list[Token] = []
    append = tokens.append
    for match in _TOKEN.finditer(text):
        group = match.lastgroup
        value = match.group()
        if group == "word":
            lower = value.lower()
            append(Token(Kind.WORD, lower, len(value) > 1 and value.isupper()))
        elif group in {"emoticon", "emoji"}:
            append(Token(Kind.SYMBOL, value))
        elif group == "exclamation":
            append(Token(Kind.EXCLAMATION, "!" * min(len(value), 4)))
        elif group == "question":
            append(Token(Kind.QUESTION, "?"))
        else:
            append(Token(Kind.BREAK, ","))
    return tokens

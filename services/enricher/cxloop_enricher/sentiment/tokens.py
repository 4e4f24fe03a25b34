"""Tokenisation shared by the lexicon engine and the n-gram features.

Tokens are plain strings in their original case (a single `findall` in C; building an object
per token would cost more than the scoring itself). `kind` tells them apart.
"""

from __future__ import annotations

import re
from enum import IntEnum


class Kind(IntEnum):
    """What a token is."""

    WORD = 0
    SYMBOL = 1  # an emoji or an emoticon
    BREAK = 2  # clause punctuation: , ; : . and a free-standing dash
    EXCLAMATION = 3
    QUESTION = 4


# Emoticons that look like words to the tokenizer.
EMOTICONS = frozenset({"xD", "XD"})

BREAKS = ".,;:-–—"
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+|\S+@\S+\.\w+|\[[A-Z_]+\]")
# Words first: most tokens are words, and the emoticon alternatives, which all start with a
# character a word cannot, were tried in vain before each of them. "xD" stays ahead of words.
_TOKEN = re.compile(
    r"[xX]D\b|[^\W_]+(?:['’-][^\W_]+)*"
    r"|>:\(|:'\(|:-?\)+|:-?\(+|:-?[DP/]|;-?[)D]|<3|\^\^|-[._]-"
    r"|[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u2B55]"
    r"[\uFE0F\u200D\u2640\u2642\U0001F3FB-\U0001F3FF\U0001F300-\U0001FAFF]*"
    r"|!+|\?+|[.,;:]+|(?<=\s)[-–—](?=\s)"
)
_KINDS = {"!": Kind.EXCLAMATION, "?": Kind.QUESTION}


def tokenize(text: str) -> list[str]:
    """The tokens of `text`; URLs, mentions, e-mail addresses and PII placeholders dropped."""
    # Every alternative of _NOISE needs one of these substrings; most comments have none, and
    # the search for an e-mail address tries every position.
    if "@" in text or "#" in text or "[" in text or "http" in text or "www." in text:
        text = _NOISE.sub(" ", text)
    return _TOKEN.findall(text)


def kind(token: str) -> Kind:
    """The kind of a token returned by `tokenize`."""
    first = token[0]
    if first.isalnum():
        return Kind.SYMBOL if token in EMOTICONS else Kind.WORD
    found = _KINDS.get(first)
    if found is not None:
        return found
    if not token.strip(BREAKS):
        return Kind.BREAK
    return Kind.SYMBOL

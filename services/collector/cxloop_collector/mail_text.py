"""The feedback in a mail body: the new text of a reply, without quotes and signatures (pure).

Quoted replies ("Am ... schrieb ...:", "On ... wrote:", Outlook headers, "> " lines) are cut,
and so are signatures: the "-- " delimiter, mobile footers ("Sent from my iPhone"), and a
closing formula ("Mit freundlichen Grüßen", "Viele Grüße", "LG", "Best regards", "Cheers",
"Thanks,", ...) together with what follows it when that is a short block such as a name and an
address. A closing formula stays when real text follows it (a sentence, a "PS"), and when
nothing but greetings came before it ("Danke!" alone is feedback). The rules know German and
English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Final

_QUOTE_HEADERS: Final = (
    # German Gmail/Apple Mail/Thunderbird: "Am 23.11.2026 um 10:15 schrieb Max <max@x.de>:",
    # possibly wrapped over two lines.
    re.compile(r"^\s*Am\s.{4,200}?\sschrieb\s.{0,200}?:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*On\s.{4,200}?\swrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Originalnachricht)\s*-{2,}"),
    re.compile(r"^\s*(Von|From):\s.+$", re.IGNORECASE),
    re.compile(r"^_{10,}\s*$"),
)
_SIGNATURE_LINES: Final = re.compile(
    r"^\s*(--|-- |Sent from my .+|Von meinem .+ gesendet\.?|Gesendet von .+|"
    r"Get Outlook for .+|Diese Nachricht wurde von meinem .+ gesendet\.?)\s*$",
    re.IGNORECASE,
)

_GREETINGS_DE: Final = (
    r"(?:mit\s+)?"
    r"(?:(?:ganz\s+)?(?:viel|best|lieb|herzlich|freundlich|schön|sonnig|sommerlich)e[nm]?\s+)?"
    r"gr(?:ü|ue|u)(?:ß|ss)(?:e|en)?"
)
_CLOSING: Final = re.compile(
    # Longer formulas before their beginnings: the first alternative that matches is taken.
    r"^\s*(?P<formula>"
    rf"(?:danke|vielen\s+dank|besten\s+dank|herzlichen\s+dank)(?:\s+(?:und|&)\s+{_GREETINGS_DE})?"
    rf"|{_GREETINGS_DE}"
    r"|danke\s*sch(?:ö|oe)n|hochachtungsvoll|mfg|lg|vg|bg|ciao|servus|tsch(?:ü|ue)ss"
    r"|(?:thanks|thank\s+you)\s+(?:and|&)\s+(?:(?:best|kind)\s+)?regards"
    r"|(?:(?:best|kind|kindest|warm|warmest|many|with\s+kind)\s+)?regards"
    r"|best\s+wishes|all\s+the\s+best|best|cheers|take\s+care|rgds|br|kr"
    r"|(?:many\s+)?thanks(?:\s+(?:again|a\s+lot|in\s+advance))?"
    r"|thank\s+you(?:\s+(?:again|very\s+much|so\s+much))?"
    r"|(?:yours\s+)?(?:sincerely|faithfully|truly)"
    r")\b\s*(?P<mark>[,.!]*)\s*(?P<rest>.*?)\s*$",
    re.IGNORECASE,
)
"""A line that is a closing formula, possibly followed by a name on the same line
("Viele Grüße, Anna", "LG Max")."""

_COMMA_BEFORE_NAME: Final = frozenset({"best", "thanks", "cheers", "danke", "regards"})
"""Formulas that start sentences too ("Best Service Ever"): a name after them needs a comma."""
_NAME_PARTICLES: Final = frozenset({"aus", "von", "vom", "from", "und", "and", "&"})
"""Lower-case words a closing line may hold after the formula ("Viele Grüße aus Köln")."""
_MAX_CLOSING_CHARS: Final = 60
_MAX_SIGNATURE_LINES: Final = 6
_MAX_SIGNATURE_LINE_CHARS: Final = 80
_LABEL: Final = re.compile(r"^[\w-]+\.?\s*:")
"""A labelled signature line: "Tel.: ...", "mobil: ...", "E-Mail: ..."."""

_BLOCK_TAGS: Final = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
)
_SKIP_TAGS: Final = frozenset({"script", "style", "head", "title", "blockquote"})
_QUOTE_CLASSES: Final = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "OutlookMessageHeader")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = " ".join(value or "" for name, value in attrs if name == "class")
        skipping = tag in _SKIP_TAGS or any(cls in classes for cls in _QUOTE_CLASSES)
        if tag not in {"br", "img", "hr", "meta", "link", "input"}:
            self._stack.append((tag, skipping))
            if skipping:
                self._skip_depth += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, skipping = self._stack.pop()
            if skipping:
                self._skip_depth -= 1
            if open_tag == tag:
                break
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth == 0:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML mail body, without quoted blocks, styles and scripts."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(lines)


def reply_text(text: str) -> str:
    """The new part of a reply: quotes, quote headers and signatures removed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _SIGNATURE_LINES.match(line):
            break
        two_lines = line + " " + (lines[index + 1] if index + 1 < len(lines) else "")
        if any(p.match(line) for p in _QUOTE_HEADERS) or (
            line.strip().lower().startswith(("am ", "on "))
            and any(p.match(two_lines) for p in _QUOTE_HEADERS[:2])
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    text = "\n".join(without_closing(kept))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def without_closing(lines: Sequence[str]) -> list[str]:
    """`lines` cut before the first closing formula that has text before it and only a short
    signature block (`is_signature_block`) after it."""
    for index, line in enumerate(lines):
        if (
            is_closing(line)
            and any(earlier.strip() for earlier in lines[:index])
            and is_signature_block(lines[index + 1 :])
        ):
            return list(lines[:index])
    return list(lines)


def is_closing(line: str) -> bool:
    """True for a line that is a closing formula, alone or with a name ("Viele Grüße, Anna",
    "LG Max", "Best regards, James O'Neill"); not for a sentence that starts like one
    ("Grüße an Ihr Team, das war super!", "Thanks for the quick help")."""
    if len(line.strip()) > _MAX_CLOSING_CHARS:
        return False
    match = _CLOSING.match(line)
    if match is None:
        return False
    words = match["rest"].split()
    if len(words) > 4 or match["rest"].endswith(("?", ":")):
        return False
    if words and "," not in match["mark"] and match["formula"].lower() in _COMMA_BEFORE_NAME:
        return False
    return all(word[0].isupper() or word.lower() in _NAME_PARTICLES for word in words)


def is_signature_block(lines: Sequence[str]) -> bool:
    """True when `lines` (what follows a closing formula) are a short block of names, titles,
    addresses and contact details rather than real text: at most a few short lines, none a
    sentence, a "PS" or text continuing in lower case."""
    filled = [line.strip() for line in lines if line.strip()]
    if len(filled) > _MAX_SIGNATURE_LINES:
        return False
    return not any(_is_real_text(line) for line in filled)


def _is_real_text(line: str) -> bool:
    words = line.split()
    if len(line) > _MAX_SIGNATURE_LINE_CHARS or len(words) >= 7:
        return True
    if re.match(r"(?i)p\.?\s?s\.?\b", line):
        return True
    if len(words) >= 4 and line.endswith((".", "!", "?")):
        return True
    # A sentence going on ("für nichts."), unlike an e-mail address, a URL or "Tel.: ...".
    return line[0].islower() and len(words) > 1 and not _LABEL.match(line)

"""Personal data redaction: e-mail addresses, phone numbers, IBANs, payment cards and
configured patterns become placeholders before a comment leaves the enricher.

E-mail addresses spelled out against harvesters ("max(at)example.de", "max [at] example [dot]
de") count as addresses. Precision matters as much as recall: order numbers, dates, amounts
and numbers that fail the IBAN (ISO 13616 mod 97) or card (Luhn) checksum stay as they are.
A digit run is a phone number only when it is written like one: international (`+49 ...`,
`0049 ...`), German national (`0` and an area code, `030 1234567`, `(0171) 123 45 67`), North
American (`(555) 123-4567`), or any 6 to 15 digits right after a word such as "Tel." or
"phone". A run right after a word such as "Bestellnummer" or "order" is an identifier, never a
phone or card number, unless the word right before it names a phone or a card
("Kundentelefon", "Kreditkartennummer", "card no."); a bare "Nummer", "Nr." or "number" names
neither.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cxloop_enricher.settings import PiiPatternSetting

EMAIL: Final = "email"
PHONE: Final = "phone"
IBAN: Final = "iban"
CARD: Final = "card"
BUILTIN_KINDS: Final = (EMAIL, PHONE, IBAN, CARD)

# ISO 13616 IBAN lengths by country (SWIFT IBAN registry).
IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

_EMAIL_RE: Final = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])", re.UNICODE
)
# Addresses spelled out against address harvesters: "max(at)example.de",
# "max [at] example [dot] de", "max [ät] example (punkt) de".
_SPELLED_AT: Final = r"[(\[{<]\s*(?:at|ät|@)\s*[)\]}>]"
_SPELLED_DOT: Final = r"(?:\s*[(\[{<]\s*(?:dot|punkt)\s*[)\]}>]\s*|\.)"
_SPELLED_AT_RE: Final = re.compile(_SPELLED_AT, re.IGNORECASE)
_SPELLED_EMAIL_RE: Final = re.compile(
    rf"(?<![\w.%+-])[\w.%+-]+\s*{_SPELLED_AT}\s*[\w-]+(?:{_SPELLED_DOT}[\w-]+)*"
    rf"{_SPELLED_DOT}[^\W\d_]{{2,}}(?![\w-])",
    re.IGNORECASE,
)
_IBAN_RE: Final = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,32}")
_NUMBER_RUN_RE: Final = re.compile(r"(?<![\w#@.,/+-])\+?\(?\+?\d[\d ()\-./]*\d\)?(?![\w])")
_GROUP_RE: Final = re.compile(r"[+(]*\d+\)?")
_DATE_RE: Final = re.compile(
    r"(?<!\d)(?:\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})?|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})"
    r"(?!\d)"
)
_NANP_RE: Final = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_PHONE_WORDS: Final = re.compile(
    r"(?:\btel\b\.?|telefon\w*|phone|handy\w*|mobil\w*|\bfax\b|whatsapp|rueckruf\w*|rückruf\w*"
    r"|call me|call back|anrufen|ruf\w* (?:mich|uns)|erreich\w*|festnetz\w*|nummer ist"
    r"|number is)",
    re.IGNORECASE,
)
# A word that says "number" and no more, after the word that says which.
_NUMBER_WORD: Final = r"(?:(?:nr|no|nummer|number|id)\b[\s:.#-]*)?$"
# An identifier word right before the number: "Bestellnummer 0012345678", "order no. 4111...".
_ID_BEFORE: Final = re.compile(
    r"(?:bestell\w*|order\w*|auftrag\w*|rechnung\w*|invoice\w*|kunden\w*|customer\w*"
    r"|sendung\w*|tracking\w*|paket\w*|parcel\w*|artikel\w*|item\w*|ticket\w*|vorgang\w*"
    r"|case|referenz\w*|reference\w*|\bref|vertrag\w*|contract\w*"
    r"|plz|postleitzahl|zip|iban|bic|blz|konto\w*|account)"
    r"[\s:.#-]*" + _NUMBER_WORD,
    re.IGNORECASE,
)
# A word naming a phone or a card right before the number outweighs an identifier word inside
# the same compound ("Kundentelefon", "Kundenkartennummer"), but not one after it
# ("Telefonrechnung 0123456789" is an invoice).
_CONTACT_BEFORE: Final = re.compile(
    r"(?:\btel|telefon|handy|mobile?|mobilfunk|rückruf|rueckruf|festnetz|hotline|whatsapp|fax"
    r"|phone|\bcell|karte|\bcard|visa|mastercard|amex)"
    r"(?:n|s)?(?:nummer|nr|number|no)?\.?[\s:.#-]*" + _NUMBER_WORD,
    re.IGNORECASE,
)
_IBAN_PREFIX: Final = re.compile(r"[A-Za-z]{2}\d{2} ?$")
_DIGIT: Final = re.compile(r"\d")
_CONTEXT_CHARS: Final = 32
_MAX_GROUPS: Final = 8
_MIN_DIGITS: Final = 6
_MAX_DIGITS: Final = 19


def iban_valid(candidate: str) -> bool:
    """True for an IBAN of its country's length whose ISO 7064 mod-97 check holds."""
    iban = candidate.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _may_spell_an_address(text: str) -> bool:
    # Most comments hold no bracket; testing for one first keeps the regex off them.
    bracket = "(" in text or "[" in text or "{" in text or "<" in text
    return bracket and _SPELLED_AT_RE.search(text) is not None


def _follows_identifier_word(before: str) -> bool:
    if _CONTACT_BEFORE.search(before) is not None:
        return False
    return _ID_BEFORE.search(before) is not None or _IBAN_PREFIX.search(before) is not None


def card_number(span: str, before: str) -> bool:
    """True when `span` is a payment card number: 13-19 digits, issuer prefix, Luhn."""
    if any(ch not in "0123456789 -" for ch in span):
        return False
    digits = span.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or not luhn_valid(digits):
        return False
    return not _follows_identifier_word(before)


def phone_number(span: str, before: str, *, phone_words: bool = True) -> bool:
    """True when `span`, preceded by `before`, is written as a phone number.

    `phone_words=False` says the text holds no word such as "Tel." at all (saves the search).
    """
    if _DATE_RE.search(span) or "//" in span or ".." in span:
        return False
    digits = "".join(ch for ch in span if ch.isdigit())
    bare = span.lstrip("(")
    if bare.startswith("+") or bare.startswith("00"):
        number = digits[2:] if bare.startswith("00") else digits
        shaped = 8 <= len(number) <= 15 and number[0] != "0"
    elif bare.startswith("0"):
        shaped = 7 <= len(digits) <= 13
    else:
        shaped = _NANP_RE.fullmatch(span) is not None
    if not shaped and not (phone_words and 6 <= len(digits) <= 15 and _PHONE_WORDS.search(before)):
        return False
    return not _follows_identifier_word(before)


def _shaped_phone_number(span: str, before: str) -> bool:
    return phone_number(span, before, phone_words=False)


Validator = Callable[[str, str], bool]


def _best_spans(text: str, run: re.Match[str], valid: Validator) -> list[tuple[int, int]]:
    """The longest sub-runs of whole digit groups that `valid` accepts, left to right.

    Only runs of 6 to 19 digits are candidates (no phone or card number is shorter or longer),
    which keeps long digit tables cheap.
    """
    base = run.start()
    groups = []
    total = 0
    counts = [0]
    for g in _GROUP_RE.finditer(run.group(0)):
        groups.append((base + g.start(), base + g.end()))
        total += sum(ch.isdigit() for ch in g.group(0))
        counts.append(total)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(groups):
        for j in range(min(len(groups), i + _MAX_GROUPS) - 1, i - 1, -1):
            if not _MIN_DIGITS <= counts[j + 1] - counts[i] <= _MAX_DIGITS:
                continue
            start, end = groups[i][0], groups[j][1]
            before = text[max(0, start - _CONTEXT_CHARS) : start]
            if valid(text[start:end], before):
                spans.append((start, end))
                i = j + 1
                break
        else:
            i += 1
    return spans


@dataclass(frozen=True, slots=True)
class Redaction:
    """A text with personal data replaced, and how many of each kind were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    placeholder: str


class Redactor:
    """Replaces personal data in free text; see the module docstring for what counts."""

    def __init__(self, extra: Sequence[PiiPatternSetting] = ()) -> None:
        self._extra: list[_Pattern] = []
        for setting in extra:
            try:
                regex = re.compile(setting.regex)
            except re.error as exc:
                raise ValueError(f"PII pattern {setting.name!r}: invalid regex: {exc}") from exc
            placeholder = setting.placeholder or f"[{setting.name.upper()}]"
            self._extra.append(_Pattern(setting.name, regex, placeholder))

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every kind this redactor may count."""
        return BUILTIN_KINDS + tuple(p.kind for p in self._extra)

    def redact(self, text: str) -> Redaction:
        """Replace e-mails, configured patterns, IBANs, cards and phones, in that order."""
        counts: dict[str, int] = {}
        if "@" in text:
            text = _substitute(text, _EMAIL_RE, "[EMAIL]", EMAIL, counts)
        if _may_spell_an_address(text):
            text = _substitute(text, _SPELLED_EMAIL_RE, "[EMAIL]", EMAIL, counts)
        for pattern in self._extra:
            text = _substitute(text, pattern.regex, pattern.placeholder, pattern.kind, counts)
        if _DIGIT.search(text) is None:
            return Redaction(text, counts)
        ibans, kept = _iban_spans(text)
        if ibans:
            text = _replace_spans(text, ibans, "[IBAN]", IBAN, counts)
            kept = _iban_spans(text)[1]
        runs = list(_NUMBER_RUN_RE.finditer(text))
        if runs:
            cards = [s for run in runs for s in _best_spans(text, run, card_number)]
            cards = _outside(cards, kept)
            if cards:
                text = _replace_spans(text, cards, "[CARD]", CARD, counts)
                kept = _iban_spans(text)[1]
                runs = list(_NUMBER_RUN_RE.finditer(text))
            phone = phone_number if _PHONE_WORDS.search(text) else _shaped_phone_number
            phones = [s for run in runs for s in _best_spans(text, run, phone)]
            text = _replace_spans(text, _outside(phones, kept), "[PHONE]", PHONE, counts)
        return Redaction(text, counts)

    def redact_emails(self, text: str) -> Redaction:
        """Replace only e-mail addresses (for URLs, where digits are not personal data)."""
        counts: dict[str, int] = {}
        if "@" in text:
            text = _substitute(text, _EMAIL_RE, "[EMAIL]", EMAIL, counts)
        return Redaction(text, counts)


def _iban_spans(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Valid IBANs, and IBAN-shaped text failing the check (kept, and kept from other kinds)."""
    valid: list[tuple[int, int]] = []
    shaped: list[tuple[int, int]] = []
    for found in _IBAN_RE.finditer(text):
        length = IBAN_LENGTHS.get(found.group(0)[:2].upper())
        if length is None:
            continue
        taken = 0
        end = found.end()
        for pos, ch in enumerate(found.group(0)):
            if ch != " ":
                taken += 1
            if taken == length:
                end = found.start() + pos + 1
                break
        follows = text[end : end + 1]
        span = (found.start(), end)
        if taken == length and not follows.isalnum() and iban_valid(text[span[0] : span[1]]):
            valid.append(span)
        else:
            shaped.append(span)
    return valid, shaped


def _outside(spans: list[tuple[int, int]], kept: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(s, e) for s, e in spans if not any(s < ke and ks < e for ks, ke in kept)]


def _substitute(
    text: str, regex: re.Pattern[str], placeholder: str, kind: str, counts: dict[str, int]
) -> str:
    new, n = regex.subn(placeholder, text)
    if n:
        counts[kind] = counts.get(kind, 0) + n
    return new


def _replace_spans(
    text: str,
    spans: Iterable[tuple[int, int]],
    placeholder: str,
    kind: str,
    counts: dict[str, int],
) -> str:
    ordered = sorted(spans)
    if not ordered:
        return text
    pieces = []
    last = 0
    for start, end in ordered:
        pieces.append(text[last:start])
        pieces.append(placeholder)
        last = end
    pieces.append(text[last:])
    counts[kind] = counts.get(kind, 0) + len(ordered)
    return "".join(pieces)

"""Personal data redaction: e-mail addresses, phone numbers, IBANs, payment cards, names,
street addresses and configured patterns become placeholders before a comment leaves the
enricher.

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

Names and street addresses have no checksum and no offline named-entity model decides them, so
only the forms that say what they are count. A name: the capitalised words after a form of
address ("Herr Müller", "Frau Dr. Anna Schmidt", "Mr. Smith"), after a self-introduction
("mein Name ist Max Mustermann", "my name is Jane Doe") or after a closing formula, up to the
end of its line ("Viele Grüße, Max Mustermann", "LG Anna", "Best regards, Jane"); the form of
address and the formula stay. An address: a German street with its house number
("Musterstraße 12a", "Berliner Allee 5", "Karl-Marx-Allee 3/4", with ", 12345 Berlin" when it
follows) or an English one ("221B Baker Street"). A number followed by a unit ("Bahnhofstraße
5 Minuten") and words that only end like streets ("Parkplatz 3", "Sitzplatz 45", "Umweg 2")
stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, get_args
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from cxloop_enricher.settings import KeptKind, PiiPatternSetting
from cxruntime.errors import ConfigurationError

if TYPE_CHECKING:
    from cxloop_enricher.settings import EnricherSettings
    from cxloop_enricher.taxonomy import Taxonomy

EMAIL: Final = "email"
PHONE: Final = "phone"
IBAN: Final = "iban"
CARD: Final = "card"
NAME: Final = "name"
ADDRESS: Final = "address"
BUILTIN_KINDS: Final = (EMAIL, PHONE, IBAN, CARD, NAME, ADDRESS)
PLACEHOLDERS: Final = {kind: f"[{kind.upper()}]" for kind in BUILTIN_KINDS}
"""The placeholder of each built-in kind: "[EMAIL]", "[PHONE]" and so on."""
KEEPABLE_KINDS: Final[tuple[str, ...]] = get_args(KeptKind)

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
_IBAN_RE: Final = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,32}")
# Not right after a letter, digit or one of #@.,/+- (inside a decimal, a version, a path), but
# right after "Tel." with no space ("Tel.+49 30 123456").
_NUMBER_RUN_RE: Final = re.compile(
    r"(?:(?<![\w#@.,/+-])|(?<=[Tt]el\.)|(?<=TEL\.))\+?\(?\+?\d[\d ()\-./]*\d\)?(?![\w])"
)
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
# Names. `re` has no class for capitals beyond ASCII, so a word's first letter is tested in
# code; a name may be hyphenated or carry an apostrophe ("Müller-Lüdenscheidt", "O'Brien"), and
# initials count as its words ("Frau Dr. A. Merkel").
_NAME_WORD: Final = r"(?:[^\W\d_]\.|[^\W\d_]+(?:[-'’][^\W\d_]+)*)"  # or an initial: "A."
_SPACES_RE: Final = re.compile(r"([ \t]+)")
_HONORIFIC_RE: Final = re.compile(
    r"(?<![\w.])(?P<cue>(?:Herrn?|Frau|Hr\.|Fr\.|Mrs?\.?|Ms\.?|Miss|Mx\.?)"
    r"(?:[ \t]+(?:Dr|Prof)\.?)*|(?:Dr|Prof)\.?)[ \t]+"
    rf"(?P<names>{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)"
)
_INTRODUCTION_RE: Final = re.compile(
    r"(?P<cue>(?i:\b(?:mein[ \t]+name[ \t]+ist|my[ \t]+name[ \t]+is|ich[ \t]+hei(?:ß|ss)e)[ \t]+"
    r"|\bname[ \t]*:[ \t]*))"
    rf"(?P<names>{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,2}})"
)
# A closing formula at the start of a line or after punctuation, and the names after it up to
# the end of the line (anything else after "Gruß" is too often a place: "Gruß aus Köln").
_SIGN_OFF_RE: Final = re.compile(
    r"(?:^|(?<=[\n.!?,;:)]))[ \t]*(?P<cue>(?i:"
    r"(?:mit[ \t]+)?(?:viele|liebe|beste|herzliche|freundliche|sch(?:ö|oe)ne|sonnige)n?[ \t]+"
    r"gr(?:ü|ue)(?:ß|ss)en?|gr(?:ü|ue)(?:ß|ss)e|gru(?:ß|ss)|mfg|lg|vg"
    r"|(?:best|kind|warm|warmest|kindest)[ \t]+regards|regards|best[ \t]+wishes|cheers"
    r"|(?:yours[ \t]+)?sincerely|yours[ \t]+truly)[ \t]*[,.!]?\s+)"
    rf"(?P<names>{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,3}})[ \t]*[.!]?[ \t]*(?=\r?\n|\Z)"
)
# Words before the name in a signature that are not part of it ("Ihr Max Mustermann",
# "Familie Müller"), and capitalised words that are no names where a name may stand.
_BEFORE_NAMES: Final = frozenset(
    {"ihr", "ihre", "dein", "deine", "euer", "eure", "your", "familie", "family"}
)
_NOT_NAMES: Final = frozenset(
    {
        "kunde", "kundin", "kunden", "stammkunde", "stammkundin", "team", "customer", "doktor",
        "professor", "professorin", "kollege", "kollegin", "und", "and", "sowie", "sie",
        "ihnen", "ihr", "ihre", "du", "dich", "dir", "euch", "dr", "prof", "herr", "herrn", "frau",
        "hr", "fr", "mr", "mrs", "ms", "miss", "mx", "the", "of", "in", "on", "at", "for", "to",
    }
)  # fmt: skip

# Street addresses, found from their house number: a comment has few numbers, and testing the
# words before each costs less than a pattern trying every capital letter. A house number
# followed by a unit is a quantity, not an address.
_STREET_ENDINGS: Final = (
    "straße", "strasse", "str.", "weg", "allee", "platz", "gasse", "ring", "damm", "ufer",
    "chaussee", "pfad", "promenade",
)  # fmt: skip
_STREET_WORD: Final = "|".join(map(re.escape, _STREET_ENDINGS))
_HOUSE_NUMBER_RE: Final = re.compile(
    # The digit first (the search then skips to digits in C), then the character before it.
    r"\d(?<![\w.,/-]\d)\d{0,3}(?:[ \t]?[a-zA-Z](?!\w))?"
    r"(?:[ \t]?[-/][ \t]?\d{1,4}(?:[a-zA-Z](?!\w))?)?(?!\w)(?![.,:]\d)"
    r"(?![ \t]*(?:€|%|\$|(?i:tage?n?|minuten|min|stunden|std|h|wochen|monate?n?|jahre?n?|euro"
    r"|eur|mal|x|km|m|meter|stück|stk|artikel|pakete?|sterne?|prozent|uhr|cent|ct|kg|g|cm|mm"
    r"|l)\b))"
)
# The street before the number, matched against the text that ends at it.
_STREET_BEFORE_RE: Final = re.compile(
    r"(?:(?<=[^\w-])|^)(?P<street>"
    rf"[A-ZÄÖÜ][^\W\d_]*(?:-[^\W\d_]+)*-?(?i:{_STREET_WORD})"
    rf"|[A-ZÄÖÜ][^\W\d_]+(?:er|sche[nrs]?)[ \t]+(?i:{_STREET_WORD}))[ \t]*\Z"
)
_POSTCODE_CITY_RE: Final = re.compile(
    r"[ \t]*,?\s*(?:D-)?\d{5}[ \t]+[A-ZÄÖÜ][^\W\d_]+(?:-[A-ZÄÖÜ]?[^\W\d_]+)*"
)
_ADDRESS_EN_RE: Final = re.compile(
    r"\d{1,4}[A-Za-z]?[ \t]+(?:[A-Z][a-z]+[ \t]+){1,3}"
    r"(?P<street>Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Boulevard|Blvd|Way|Court|Ct|Place"
    r"|Terrace|Close|Crescent|Square)\b\.?"
)
_STREET_CHARS: Final = 60
_STREET_NAMES_EN: Final = (
    " St", " Rd", " Ave", " Ln", " Ct", " Way", "Street", "Road", "Avenue", "Lane", "Drive",
    "Boulevard", "Blvd", "Court", "Place", "Terrace", "Close", "Crescent", "Square",
)  # fmt: skip
# Words that end like a street but are none ("Sitzplatz 45", "Umweg 2").
_NOT_STREETS: Final = frozenset(
    {
        "parkplatz", "sitzplatz", "stellplatz", "arbeitsplatz", "fensterplatz", "gangplatz",
        "spielplatz", "sportplatz", "campingplatz", "abstellplatz", "rastplatz", "stehplatz",
        "liegeplatz", "tabellenplatz", "listenplatz", "startplatz", "studienplatz", "kitaplatz",
        "krippenplatz", "ausbildungsplatz", "rückweg", "rueckweg", "hinweg", "umweg", "ausweg",
        "heimweg", "arbeitsweg", "lieferweg", "versandweg", "zahlungsweg", "rechtsweg",
        "postweg", "schulweg", "fußweg", "fussweg", "radweg", "wanderweg", "ehering", "hering",
        "schlüsselring", "staudamm", "spring", "string", "bring", "during", "conjuring",
        "offering", "boring", "hearing", "herring", "earring",
    }
)  # fmt: skip
_IBAN_PREFIX: Final = re.compile(r"[A-Za-z]{2}\d{2} ?$")
_DIGIT: Final = re.compile(r"\d")
_CONTEXT_CHARS: Final = 32
_MAX_GROUPS: Final = 8
_MIN_DIGITS: Final = 6
_MAX_DIGITS: Final = 19


def iban_valid(candidate: str) -> bool:
    """True for an IBAN of its country's length whose ISO 7064 mod-97 check holds."""
    iban = candidate.replace(" ", "").replace("-", "").upper()
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

    def __init__(
        self, extra: Sequence[PiiPatternSetting] = (), *, keep: Iterable[str] = ()
    ) -> None:
        """`extra`: configured patterns; `keep`: the kinds found by their form alone, `name`
        and `address`, to leave in the text (a team that wants its staff's names readable keeps
        `name`). E-mail addresses, phone, IBAN and card numbers are always replaced."""
        self._keep = frozenset(keep)
        unknown = sorted(self._keep - set(KEEPABLE_KINDS))
        if unknown:
            raise ValueError(
                f"cannot keep PII kind {', '.join(map(repr, unknown))}: only "
                f"{' and '.join(KEEPABLE_KINDS)} may be kept (the others are always replaced)"
            )
        self._names = NAME not in self._keep
        self._addresses = ADDRESS not in self._keep
        self._extra: list[_Pattern] = []
        for setting in extra:
            try:
                regex = re.compile(setting.regex)
            except re.error as exc:
                raise ValueError(f"PII pattern {setting.name!r}: invalid regex: {exc}") from exc
            placeholder = setting.placeholder or f"[{setting.name.upper()}]"
            self._extra.append(_Pattern(setting.name, regex, placeholder))
        placeholders = {*PLACEHOLDERS.values(), *(p.placeholder for p in self._extra)}
        self._placeholders = re.compile(
            "|".join(map(re.escape, sorted(placeholders, key=len, reverse=True)))
        )

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every kind this redactor may count."""
        builtin = tuple(kind for kind in BUILTIN_KINDS if kind not in self._keep)
        return builtin + tuple(p.kind for p in self._extra)

    def redact(self, text: str) -> Redaction:
        """Replace e-mails, configured patterns, names, addresses, IBANs, cards and phones, in
        that order (names and addresses unless kept)."""
        counts: dict[str, int] = {}
        if "@" in text:
            text = _substitute(text, _EMAIL_RE, PLACEHOLDERS[EMAIL], EMAIL, counts)
        if _may_spell_an_address(text):
            text = _substitute(text, _SPELLED_EMAIL_RE, PLACEHOLDERS[EMAIL], EMAIL, counts)
        for pattern in self._extra:
            text = _substitute(text, pattern.regex, pattern.placeholder, pattern.kind, counts)
        # Lower-cased once for the cue tests of both (placeholders add no cue).
        lowered = text.lower() if self._names or self._addresses else text
        if self._names:
            text = _redact_names(text, lowered, counts)
        if _DIGIT.search(text) is None:
            return Redaction(text, counts)
        if self._addresses:
            text = _redact_addresses(text, lowered, counts)
        ibans, kept = _iban_spans(text)
        if ibans:
            text = _replace_spans(text, ibans, PLACEHOLDERS[IBAN], IBAN, counts)
            kept = _iban_spans(text)[1]
        runs = list(_NUMBER_RUN_RE.finditer(text))
        if runs:
            cards = [s for run in runs for s in _best_spans(text, run, card_number)]
            cards = _outside(cards, kept)
            if cards:
                text = _replace_spans(text, cards, PLACEHOLDERS[CARD], CARD, counts)
                kept = _iban_spans(text)[1]
                runs = list(_NUMBER_RUN_RE.finditer(text))
            phone = phone_number if _PHONE_WORDS.search(text) else _shaped_phone_number
            phones = [s for run in runs for s in _best_spans(text, run, phone)]
            text = _replace_spans(text, _outside(phones, kept), PLACEHOLDERS[PHONE], PHONE, counts)
        return Redaction(text, counts)

    def unmarked(self, text: str) -> str:
        """`text` with this redactor's placeholders blanked out: the customer's own words, for
        touchpoint rules and language detection (a rule's keyword "phone" must not match
        "[PHONE]", nor "[NAME] [ADDRESS]" read as English)."""
        return self._placeholders.sub(" ", text)

    def redact_emails(self, text: str) -> Redaction:
        """Replace only e-mail addresses (for URLs, where digits are not personal data)."""
        counts: dict[str, int] = {}
        if "@" in text:
            text = _substitute(text, _EMAIL_RE, PLACEHOLDERS[EMAIL], EMAIL, counts)
        return Redaction(text, counts)

    def redact_url(self, url: str) -> Redaction:
        """A page URL with its personal data replaced: e-mail addresses anywhere (also
        percent-encoded in the query), and the value of every query parameter whose name says
        what it holds (`email`, `phone`, `tel`, `name`, `vorname`, `iban`, `card`, `street`, ...;
        names and addresses unless kept). Digits elsewhere stay: in a URL they are order
        numbers and ids far more often than phone numbers."""
        redacted = self.redact_emails(url)
        if "?" not in url:
            return redacted
        parts = urlsplit(redacted.text)
        counts = dict(redacted.counts)
        changed = False
        pairs = []
        for name, given in parse_qsl(parts.query, keep_blank_values=True):
            value = given
            kind = _QUERY_KINDS.get(_NOT_ALNUM.sub("", name.lower()))
            if kind is not None and given and kind not in self._keep:
                value = PLACEHOLDERS[kind]
                counts[kind] = counts.get(kind, 0) + 1
            elif "@" in given:
                inner = self.redact_emails(given)
                value = inner.text
                add_counts(counts, inner.counts)
            changed = changed or value != given
            pairs.append((name, value))
        if not changed:
            return redacted
        query = urlencode(pairs, safe="[]", quote_via=quote)
        return Redaction(urlunsplit(parts._replace(query=query)), counts)


_QUERY_NAMES: Final = {
    EMAIL: "email mail emailaddress emailadresse",
    PHONE: "phone tel telephone telefon telefonnummer phonenumber mobile mobil handy cell",
    NAME: "name fullname firstname lastname surname vorname nachname customername kundenname",
    IBAN: "iban",
    CARD: "card cardnumber creditcard ccnumber kreditkarte kartennummer",
    ADDRESS: "address street streetaddress adresse strasse straße anschrift",
}
_QUERY_KINDS: Final = {name: kind for kind, names in _QUERY_NAMES.items() for name in names.split()}
"""Query parameter names (lower case, letters and digits only) that say which kind of personal
data their value is."""
_NOT_ALNUM: Final = re.compile(r"[\W_]+")


def add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    """Add redaction counts by kind into `total`."""
    for kind, n in counts.items():
        total[kind] = total.get(kind, 0) + n


def _name_words(words: list[str]) -> int:
    """How many of `words` (from the start) are a name: capitalised, none of `_NOT_NAMES`."""
    taken = 0
    for word in words:
        if not word[0].isupper() or word.lower() in _NOT_NAMES:
            break
        taken += 1
    return taken


def _name_span(found: re.Match[str], *, whole: bool) -> tuple[int, int] | None:
    """Where the name in the match is: its leading capitalised words; None if there is none.

    `whole`: every word after the words of `_BEFORE_NAMES` must be a name (a signature).
    """
    parts = _SPACES_RE.split(found.group("names"))  # words at even, spaces at odd positions
    words = parts[::2]
    skip = 0
    while whole and skip < len(words) - 1 and words[skip].lower() in _BEFORE_NAMES:
        skip += 1
    taken = _name_words(words[skip:])
    if not taken or (whole and skip + taken < len(words)):
        return None
    start = found.start("names") + sum(map(len, parts[: 2 * skip]))
    return start, start + sum(map(len, parts[2 * skip : 2 * (skip + taken) - 1]))


def _substitute_names(
    text: str, regex: re.Pattern[str], counts: dict[str, int], *, whole: bool
) -> str:
    """Every name `regex` finds replaced by `[NAME]`. The search goes on right after each name
    (or after the cue, when none followed), not after the match: words the match took but the
    name did not may hold the next cue ("Frau Meier und Herr Schulz")."""
    spans: list[tuple[int, int]] = []
    position = 0
    while (found := regex.search(text, position)) is not None:
        span = _name_span(found, whole=whole)
        if span is None:
            position = found.start("names")
            continue
        spans.append(span)
        position = span[1]
    return _replace_spans(text, spans, PLACEHOLDERS[NAME], NAME, counts)


# Substrings every match of a name or address pattern contains: most comments hold none, and
# testing for them (in C) keeps the patterns, which try every position, off those comments.
# (The honorifics' cue is one pattern of plain alternatives, which `re` searches about twice as
# fast as ten substring tests.)
_HONORIFIC_CUE_RE: Final = re.compile(r"Herr|Frau|Hr\.|Fr\.|M[rsx]|Miss|Dr|Prof")
_INTRODUCTION_CUES: Final = ("name", "heiße", "heisse")
_SIGN_OFF_CUES: Final = (
    "grü", "grue", "gruß", "gruss", "mfg", "lg", "vg", "regards", "wishes", "cheers", "sincerely",
    "truly",
)  # fmt: skip


def _contains_any(text: str, cues: tuple[str, ...]) -> bool:
    for cue in cues:  # noqa: SIM110 (a plain loop is faster than any() on this path)
        if cue in text:
            return True
    return False


def _redact_names(text: str, lowered: str, counts: dict[str, int]) -> str:
    """Names after a form of address, a self-introduction or a closing formula (`lowered`: the
    text in lower case, for the cue tests)."""
    if _HONORIFIC_CUE_RE.search(text) is not None:
        text = _substitute_names(text, _HONORIFIC_RE, counts, whole=False)
    if _contains_any(lowered, _INTRODUCTION_CUES):
        text = _substitute_names(text, _INTRODUCTION_RE, counts, whole=False)
    if _contains_any(lowered, _SIGN_OFF_CUES):
        text = _substitute_names(text, _SIGN_OFF_RE, counts, whole=True)
    return text


def _redact_addresses(text: str, lowered: str, counts: dict[str, int]) -> str:
    """German and English street addresses with a house number (see the module docstring;
    `lowered`: the text in lower case, for the cue test)."""
    if not (_contains_any(lowered, _STREET_ENDINGS) or _contains_any(text, _STREET_NAMES_EN)):
        return text
    spans: list[tuple[int, int]] = []
    for number in _HOUSE_NUMBER_RE.finditer(text):
        start, end = number.span()
        if spans and start < spans[-1][1]:
            continue
        before = None
        if text[max(0, start - 12) : start].rstrip().lower().endswith(_STREET_ENDINGS):
            before = _STREET_BEFORE_RE.search(text, max(0, start - _STREET_CHARS), start)
        if before is not None and before.group("street").lower() not in _NOT_STREETS:
            city = _POSTCODE_CITY_RE.match(text, end)
            spans.append((before.start("street"), city.end() if city else end))
            continue
        # English: the number comes first ("221B Baker Street").
        street = _ADDRESS_EN_RE.match(text, start)
        if street is not None:
            spans.append((start, street.end()))
    return _replace_spans(text, spans, PLACEHOLDERS[ADDRESS], ADDRESS, counts)


def configured_redactor(taxonomy: Taxonomy, settings: EnricherSettings) -> Redactor:
    """The redactor of the taxonomy's `pii` section and the `CX_ENRICHER_PII_*` variables."""
    try:
        return Redactor(
            [*taxonomy.pii_patterns, *settings.enricher_pii_patterns],
            keep=[*taxonomy.pii_keep, *settings.enricher_pii_keep],
        )
    except ValueError as exc:
        raise ConfigurationError(f"{taxonomy.source} / CX_ENRICHER_PII_PATTERNS: {exc}") from exc


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
            if ch not in " -":  # grouped with spaces or hyphens
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

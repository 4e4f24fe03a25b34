"""PII redaction: what must be replaced, and the look-alikes that must stay."""

from __future__ import annotations

import io
import json
import time
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxloop_enricher.pii import Redaction, Redactor, configured_redactor, iban_valid, luhn_valid
from cxloop_enricher.settings import EnricherSettings, PiiPatternSetting
from cxloop_enricher.taxonomy import load_taxonomy
from cxruntime.cli import main as cli_main
from cxruntime.errors import ConfigurationError


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


REDACTED: list[tuple[str, str, dict[str, int]]] = [
    # e-mail
    ("Schreiben Sie an max.mustermann@example.de", "Schreiben Sie an [EMAIL]", {"email": 1}),
    ("mail: Jane_Doe+shop@mail.co.uk.", "mail: [EMAIL].", {"email": 1}),
    ("a@b.de und c.d@e-f.com", "[EMAIL] und [EMAIL]", {"email": 2}),
    ("jürgen.müller@beispiel.de", "[EMAIL]", {"email": 1}),
    # spelled out against address harvesters
    ("max(at)example.de", "[EMAIL]", {"email": 1}),
    ("Mail: max [at] example [dot] de bitte", "Mail: [EMAIL] bitte", {"email": 1}),
    ("Max.Muster [ät] t-online (punkt) de", "[EMAIL]", {"email": 1}),
    ("jane@doe.com oder jane{at}doe.co.uk.", "[EMAIL] oder [EMAIL].", {"email": 2}),
    # phone: German national and international formats
    ("Ruf mich an: 0171 1234567", "Ruf mich an: [PHONE]", {"phone": 1}),
    ("Tel. 030/12345678", "Tel. [PHONE]", {"phone": 1}),
    ("IBAN DE89-3704-0044-0532-0130-00 bitte", "IBAN [IBAN] bitte", {"iban": 1}),
    ("IBAN DE89-3704-0044-0532-0130-01 bitte", "IBAN DE89-3704-0044-0532-0130-01 bitte", {}),
    # Written against "Tel." with no space.
    ("Tel.+4930123456", "Tel.[PHONE]", {"phone": 1}),
    ("Tel.030 1234567", "Tel.[PHONE]", {"phone": 1}),
    ("TEL.+49 30 123456", "TEL.[PHONE]", {"phone": 1}),
    ("erreichbar unter (0171) 123 45 67", "erreichbar unter [PHONE]", {"phone": 1}),
    ("unter 089-1234567 tagsüber", "unter [PHONE] tagsüber", {"phone": 1}),
    ("+49 (0) 30 12345678", "[PHONE]", {"phone": 1}),
    ("+49 171 1234567", "[PHONE]", {"phone": 1}),
    ("0049 171 1234567", "[PHONE]", {"phone": 1}),
    ("call +44 20 7946 0958 please", "call [PHONE] please", {"phone": 1}),
    ("my number is (555) 123-4567", "my number is [PHONE]", {"phone": 1}),
    ("+1 555-123-4567", "[PHONE]", {"phone": 1}),
    ("Telefon: 1234567", "Telefon: [PHONE]", {"phone": 1}),
    ("Handy 01711234567!", "Handy [PHONE]!", {"phone": 1}),
    ("Das Paket kam nicht. 0171 1234567", "Das Paket kam nicht. [PHONE]", {"phone": 1}),
    # a word naming the phone before it, alone or in a compound with "Nummer" or "Kunden"
    ("Meine Nummer: 030 1234567", "Meine Nummer: [PHONE]", {"phone": 1}),
    ("my number: 0171 1234567", "my number: [PHONE]", {"phone": 1}),
    ("Nr. 0171 1234567", "Nr. [PHONE]", {"phone": 1}),
    ("Telefonnummer: +49 30 1234567", "Telefonnummer: [PHONE]", {"phone": 1}),
    ("Handynummer 0171 1234567", "Handynummer [PHONE]", {"phone": 1}),
    ("Rückrufnummer 0301234567", "Rückrufnummer [PHONE]", {"phone": 1}),
    ("Kundentelefon: 030 1234567", "Kundentelefon: [PHONE]", {"phone": 1}),
    ("WhatsApp-Nummer: 0171 1234567", "WhatsApp-Nummer: [PHONE]", {"phone": 1}),
    ("phone no. 0171 1234567", "phone no. [PHONE]", {"phone": 1}),
    (
        "Meine Nummer: +49 (0)30 1234-5678, bitte",
        "Meine Nummer: [PHONE], bitte",
        {"phone": 1},
    ),
    # IBAN: checksum-validated, with or without spaces
    ("IBAN DE89 3704 0044 0532 0130 00 bitte", "IBAN [IBAN] bitte", {"iban": 1}),
    ("DE89370400440532013000", "[IBAN]", {"iban": 1}),
    ("GB82 WEST 1234 5698 7654 32", "[IBAN]", {"iban": 1}),
    ("auf AT611904300234573201 überwiesen", "auf [IBAN] überwiesen", {"iban": 1}),
    ("de89 3704 0044 0532 0130 00", "[IBAN]", {"iban": 1}),
    # card: Luhn-validated, common issuer prefixes
    ("Karte 4111 1111 1111 1111 belastet", "Karte [CARD] belastet", {"card": 1}),
    ("5555-5555-5555-4444", "[CARD]", {"card": 1}),
    ("Amex 378282246310005", "Amex [CARD]", {"card": 1}),
    ("card 4012888888881881 was charged", "card [CARD] was charged", {"card": 1}),
    ("Kartennummer 4111 1111 1111 1111", "Kartennummer [CARD]", {"card": 1}),
    ("Kreditkartennr. 4111111111111111", "Kreditkartennr. [CARD]", {"card": 1}),
    ("card no. 4111111111111111", "card no. [CARD]", {"card": 1}),
    ("Kundenkartennummer 4111111111111111", "Kundenkartennummer [CARD]", {"card": 1}),
    # names: after a form of address (which stays), hyphenated, with titles, several
    ("Herr Müller von der Hotline war super", "Herr [NAME] von der Hotline war super", {"name": 1}),
    ("Frau Dr. Anna Schmidt hat geholfen", "Frau Dr. [NAME] hat geholfen", {"name": 1}),
    ("mit Frau Meier-Lüdenscheidt telefoniert", "mit Frau [NAME] telefoniert", {"name": 1}),
    ("Danke an Hr. Yilmaz!", "Danke an Hr. [NAME]!", {"name": 1}),
    ("Mr. Smith was rude", "Mr. [NAME] was rude", {"name": 1}),
    ("Ms O'Brien and Mrs Jane Doe helped", "Ms [NAME] and Mrs [NAME] helped", {"name": 2}),
    ("Danke Frau Schulz und Herrn Meier!", "Danke Frau [NAME] und Herrn [NAME]!", {"name": 2}),
    ("Dr. Weber hat mich beraten", "Dr. [NAME] hat mich beraten", {"name": 1}),
    ("Frau Dr. A. Merkel sagt", "Frau Dr. [NAME] sagt", {"name": 1}),  # initials
    # names: self-introductions
    (
        "Mein Name ist Max Mustermann und ich bin sauer",
        "Mein Name ist [NAME] und ich bin sauer",
        {"name": 1},
    ),
    ("my name is Jane Doe", "my name is [NAME]", {"name": 1}),
    ("Ich heiße Tom.", "Ich heiße [NAME].", {"name": 1}),
    ("Name: Peter Schmidt, Kunde seit 2010", "Name: [NAME], Kunde seit 2010", {"name": 1}),
    # names: signatures (the closing formula and a possessive stay)
    ("Alles super. Viele Grüße, Max Mustermann", "Alles super. Viele Grüße, [NAME]", {"name": 1}),
    (
        "Mit freundlichen Grüßen\nIhr Max Mustermann",
        "Mit freundlichen Grüßen\nIhr [NAME]",
        {"name": 1},
    ),
    ("Top! LG Anna", "Top! LG [NAME]", {"name": 1}),
    ("Viele Grüße Familie Müller", "Viele Grüße Familie [NAME]", {"name": 1}),
    ("Best regards,\nJane", "Best regards,\n[NAME]", {"name": 1}),
    (
        "Gruß\nMax Mustermann\nTel. 0171 1234567",
        "Gruß\n[NAME]\nTel. [PHONE]",
        {"name": 1, "phone": 1},
    ),
    # street addresses, with postcode and city when they follow
    (
        "Lieferung an Musterstraße 12a, 12345 Berlin kam nicht",
        "Lieferung an [ADDRESS] kam nicht",
        {"address": 1},
    ),
    ("wohne in der Goethestraße 12 und warte", "wohne in der [ADDRESS] und warte", {"address": 1}),
    ("Berliner Allee 5", "[ADDRESS]", {"address": 1}),
    ("Karl-Marx-Allee 3/4", "[ADDRESS]", {"address": 1}),
    ("Frankfurter Straße 120-122", "[ADDRESS]", {"address": 1}),
    ("Hauptstr. 7, Tel. 030 1234567", "[ADDRESS], Tel. [PHONE]", {"address": 1, "phone": 1}),
    ("Kundennummer 12, Musterweg 3", "Kundennummer 12, [ADDRESS]", {"address": 1}),
    ("Ship to 221B Baker Street please", "Ship to [ADDRESS] please", {"address": 1}),
    ("3 Main St. is wrong", "[ADDRESS] is wrong", {"address": 1}),
    # several kinds at once
    (
        "max@example.de, 0171 1234567, DE89 3704 0044 0532 0130 00, 4111111111111111",
        "[EMAIL], [PHONE], [IBAN], [CARD]",
        {"email": 1, "phone": 1, "iban": 1, "card": 1},
    ),
]


@pytest.mark.parametrize(("text", "expected", "counts"), REDACTED)
def test_personal_data_is_replaced(
    redactor: Redactor, text: str, expected: str, counts: dict[str, int]
) -> None:
    result = redactor.redact(text)
    assert result.text == expected
    assert result.counts == counts


LOOK_ALIKES = [
    "Bestellnummer 4111111111111111",  # Luhn-valid, but an order number
    "Bestellung 0012345678 vom 03.11.2026",
    "Order #123456789 arrived",
    "order no. 0171234567 is missing",
    "Rechnungsnummer: 0123456789",
    "Kundennummer 0301234567",
    "Telefonrechnung 0123456789",  # the invoice of a phone contract
    "Vertragsnummer 0171 1234567",
    "am 23.11.2026 um 14:30 Uhr",
    "am 03.11.2026",
    "2026-11-23",
    "11/23/2026",
    "Preis 1.299,00 EUR statt 49,99 €",
    "it cost $1,299.99",
    "0,99 € Versand",
    "PLZ 80331 München",
    "Artikel 0815-4711 defekt",
    "Sendung 00340434161094042557",
    "IBAN DE89 3704 0044 0532 0130 01",  # wrong check digits
    "DE00 1234 5678 9012 3456 78",
    "Karte 4111 1111 1111 1112",  # fails Luhn
    "1234 5678 9012 3456",  # fails Luhn
    "Version 10.2.3 der App",
    "3 Tage, 14 Stunden",
    "KW 47, 2 Pakete",
    "Ticket 0815123456 offen",
    "Treffen (at) home",
    "Termin [at] 10.30 Uhr",
    # no name: a noun or pronoun after the cue, a place after a greeting, a brand
    "Eine Frau am Telefon war unfreundlich",
    "Herr der Ringe auf Blu-ray",
    "Ich heiße Sie herzlich willkommen",
    "Gruß aus Köln",
    "Viele Grüße\nIhr Kunde",
    "Fernseher von LG Electronics",
    "I miss the old app",
    "Viele Grüße aus dem Urlaub, alles bestens",
    # no address: a quantity after a street-like word, words that only end like streets
    "Bahnhofstraße 5 Minuten entfernt",
    "Sitzplatz 45 war kaputt",
    "Parkplatz 3 belegt",
    "Verdienter Sieg bringt Tabellenplatz 2!",
    "The Conjuring 2 war gruselig",
    "ein Umweg 2 mal",
    "Am Ring 5",
    "Bestellung 4711 ist nie angekommen",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_stay(redactor: Redactor, text: str) -> None:
    result = redactor.redact(text)
    assert (result.text, result.counts) == (text, {})


def test_configured_patterns_are_replaced_and_counted() -> None:
    redactor = Redactor(
        [
            PiiPatternSetting(name="customer_number", regex=r"\bKD-\d{6,}\b"),
            PiiPatternSetting(name="plate", regex=r"\bM-[A-Z]{2} \d{3,4}\b", placeholder="[KFZ]"),
        ]
    )
    result = redactor.redact("Kunde KD-123456, Auto M-AB 1234, KD-654321")
    assert result.text == "Kunde [CUSTOMER_NUMBER], Auto [KFZ], [CUSTOMER_NUMBER]"
    assert result.counts == {"customer_number": 2, "plate": 1}
    assert redactor.kinds == (
        "email", "phone", "iban", "card", "name", "address", "customer_number", "plate",
    )  # fmt: skip
    # What touchpoint rules and language detection read: every placeholder blanked out, the
    # configured ones too; brackets a customer typed stay.
    assert redactor.unmarked(result.text + " [NAME] [Frage] [PHONE]") == (
        "Kunde  , Auto  ,     [Frage]  "
    )


def test_an_invalid_configured_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="'broken': invalid regex"):
        Redactor([PiiPatternSetting(name="broken", regex="(")])


def test_names_and_addresses_may_be_kept() -> None:
    text = "Herr Müller kam nicht zur Musterstraße 12. Tel. 0171 1234567"
    assert Redactor(keep=["name"]).redact(text) == Redaction(
        "Herr Müller kam nicht zur [ADDRESS]. Tel. [PHONE]", {"address": 1, "phone": 1}
    )
    kept = Redactor(keep=["name", "address"])
    assert kept.redact(text) == Redaction(
        "Herr Müller kam nicht zur Musterstraße 12. Tel. [PHONE]", {"phone": 1}
    )
    assert kept.kinds == ("email", "phone", "iban", "card")


@pytest.mark.parametrize("kind", ["email", "phone", "iban", "card", "names", "customer_number"])
def test_only_names_and_addresses_may_be_kept(kind: str) -> None:
    with pytest.raises(ValueError, match=f"cannot keep PII kind '{kind}'"):
        Redactor(keep=[kind])


def test_keep_is_read_from_the_taxonomy_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Frau Meier, Musterweg 3"
    taxonomy = load_taxonomy(None)
    assert configured_redactor(taxonomy, EnricherSettings()).redact(text).text == (
        "Frau [NAME], [ADDRESS]"
    )
    source = (resources.files("cxloop_enricher") / "touchpoints.yaml").read_text("utf-8")
    (tmp_path / "touchpoints.yaml").write_text(
        source.replace("  keep: []", "  keep: [address]"), "utf-8"
    )
    taxonomy = load_taxonomy(tmp_path)
    assert taxonomy.pii_keep == ("address",)
    monkeypatch.setenv("CX_ENRICHER_PII_KEEP", '["name"]')
    assert configured_redactor(taxonomy, EnricherSettings()).redact(text).text == text


def test_a_bad_keep_is_refused_at_start_up(tmp_path: Path) -> None:
    source = (resources.files("cxloop_enricher") / "touchpoints.yaml").read_text("utf-8")
    (tmp_path / "touchpoints.yaml").write_text(
        source.replace("  keep: []", "  keep: [phone]"), "utf-8"
    )
    with pytest.raises(ConfigurationError, match="keep"):
        load_taxonomy(tmp_path)


_NAMEISH = st.sampled_from(
    ["Herr ", "Frau ", "Dr. ", "Mr. ", "Grüße ", "LG ", "Name: ", "heiße ", "Müller", "Anna",
     "straße ", "Allee ", "weg ", "Street ", "12", "3a", ", ", ".", "\n", " ", "12345 ", "Berlin",
     "und ", "die ", "Sie "]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_NAMEISH, max_size=14).map("".join))
def test_names_and_addresses_are_redacted_once(text: str) -> None:
    redactor = Redactor()
    once = redactor.redact(text)
    assert redactor.redact(once.text).text == once.text
    assert sum(once.counts.values()) == once.text.count("[") - text.count("[")


def test_urls_lose_only_email_addresses(redactor: Redactor) -> None:
    result = redactor.redact_emails(
        "https://shop.example/account?email=max@example.de&id=0171234567"
    )
    assert result.text == "https://shop.example/account?email=[EMAIL]&id=0171234567"


@pytest.mark.parametrize(
    ("url", "expected", "counts"),
    [
        # Parameters named for personal data lose their value, encoded or not.
        (
            "https://shop.example/c?order=0123456789&phone=%2B4930123456",
            "https://shop.example/c?order=0123456789&phone=[PHONE]",
            {"phone": 1},
        ),
        (
            "https://x.example/?email=jane%40example.com&q=1",
            "https://x.example/?email=[EMAIL]&q=1",
            {"email": 1},
        ),
        (
            "https://x.example/p?Vorname=Max&last-name=Doe&ref=abc",
            "https://x.example/p?Vorname=[NAME]&last-name=[NAME]&ref=abc",
            {"name": 2},
        ),
        (
            "https://x.example/k?iban=DE89&Strasse=Hauptstr.+1",
            "https://x.example/k?iban=[IBAN]&Strasse=[ADDRESS]",
            {"iban": 1, "address": 1},
        ),
        # An encoded address in any other parameter, and one in the path.
        ("https://x.example/?q=a%40b.de", "https://x.example/?q=[EMAIL]", {"email": 1}),
        ("https://x.example/u/jane@example.com", "https://x.example/u/[EMAIL]", {"email": 1}),
        # Nothing named or found: the URL stays byte for byte, digits and encoding alike.
        ("https://shop.example/search?q=schuhe+42&id=0171234567&page=", None, {}),
        ("https://shop.example/checkout", None, {}),
    ],
)
def test_urls_lose_named_query_values_and_email_addresses(
    redactor: Redactor, url: str, expected: str | None, counts: dict[str, int]
) -> None:
    result = redactor.redact_url(url)
    assert result.text == (url if expected is None else expected)
    assert result.counts == counts


def test_urls_keep_names_when_names_are_kept() -> None:
    kept = Redactor(keep=["name"]).redact_url("https://x.example/p?vorname=Max&tel=030123")
    assert kept.text == "https://x.example/p?vorname=Max&tel=[PHONE]"


def test_checksums() -> None:
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")
    assert not iban_valid("DE89 3704 0044 0532 0130")  # wrong length for DE
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def _luhn_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return digit
    raise AssertionError("unreachable")


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"4[0-9]{14}", fullmatch=True), st.integers(1, 9))
def test_cards_failing_luhn_are_never_redacted(body: str, offset: int) -> None:
    valid = body + _luhn_digit(body)
    wrong = body + str((int(valid[-1]) + offset) % 10)
    redactor = Redactor()
    assert redactor.redact(f"Karte {valid}").counts == {"card": 1}
    assert redactor.redact(f"Karte {wrong}").counts == {}


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 .,-:/€$abcKD"), max_size=80))
def test_redaction_never_grows_digits(text: str) -> None:
    result = Redactor().redact(text)
    assert sum(ch.isdigit() for ch in result.text) <= sum(ch.isdigit() for ch in text)


@pytest.mark.parametrize("text", ["1 " * 2500, "Tel " + "1 " * 2498, "4111 " * 1000, "(0)" * 1666])
def test_long_digit_tables_stay_cheap(redactor: Redactor, text: str) -> None:
    started = time.process_time()
    redactor.redact(text)
    assert time.process_time() - started < 2.0


def test_cli_redacts_stdin_line_by_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = "Frau Meier war super. Tel. 0171 1234567\nMusterweg 3, 12345 Berlin\n\nDanke!\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert cli_main(["pii", "redact"]) == 0
    assert capsys.readouterr().out == ("Frau [NAME] war super. Tel. [PHONE]\n[ADDRESS]\n\nDanke!\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("Herr Müller, max@example.de\n"))
    monkeypatch.setenv("CX_ENRICHER_PII_KEEP", '["name"]')
    assert cli_main(["pii", "redact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "text": "Herr Müller, [EMAIL]",
        "redactions": {"email": 1},
    }
    monkeypatch.setenv("CX_ENRICHER_PII_KEEP", '["phone"]')
    assert cli_main(["pii", "redact"]) == 2
    assert "invalid CX_ENRICHER_* setting" in capsys.readouterr().err

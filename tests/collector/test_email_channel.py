"""Unit tests of the e-mail parser on real-looking MIME mails."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cxloop_collector.email_channel import (
    MailError,
    feedback_comment,
    parse_provider_json,
    parse_rfc822,
    submission_fields,
    to_submission,
)
from cxloop_collector.mail_text import html_to_text, is_closing, reply_text
from cxschema import FeedbackSubmission

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def raw_mail(headers: str, body: str = "Rechnung falsch.", *, charset: str = "utf-8") -> bytes:
    """A minimal raw message; `headers` are added after From, To and Subject."""
    head = "From: Anna <anna@example.de>\r\nTo: service@shop.example\r\nSubject: Rechnung\r\n"
    return (head + headers + "\r\n\r\n").encode() + body.encode(charset) + b"\r\n"


def test_multipart_alternative_quoted_printable_german_reply() -> None:
    mail = parse_rfc822((FIXTURES / "mail_multipart_qp_de.eml").read_bytes())
    assert mail.sender == "anna.schmidt@example.de"
    assert (
        mail.subject == "AW: Wie zufrieden waren Sie mit Ihrer Bestellung? Überprüfung Nr. A-1001"
    )
    assert mail.message_id == "CAF3x9Qm7+7dKp@mail.example.de"
    assert mail.sent_at is not None
    assert mail.sent_at.astimezone(UTC) == datetime(2026, 11, 23, 9, 17, 36, tzinfo=UTC)
    # The closing formula and the name after it are the signature, not feedback.
    assert feedback_comment(mail) == (
        "Hallo zusammen,\n\ndie Lieferung kam drei Tage zu spät und der Karton war beschädigt."
        " Die Hotline war aber sehr freundlich."
    )


def test_html_only_base64_english_reply() -> None:
    mail = parse_rfc822((FIXTURES / "mail_html_only_base64_en.eml").read_bytes())
    assert mail.sender == "james.oneill@example.co.uk"
    assert mail.text == ""
    comment = feedback_comment(mail)
    assert comment.startswith("Hi team,")
    assert "logging me out at checkout – I tried three times and gave up. Really" in comment
    assert comment.endswith("Really frustrating.")
    assert "James" not in comment  # "Best,\nJames" is the signature
    assert "How was your experience" not in comment
    assert "wrote" not in comment


def test_base64_plain_with_outlook_quote_and_mobile_signature() -> None:
    mail = parse_rfc822((FIXTURES / "mail_base64_outlook_de.eml").read_bytes())
    assert mail.sender == "j.weiss@example.at"
    assert mail.subject == "WG: Ihre Rücksendung R-778"
    assert mail.message_id is None
    assert feedback_comment(mail) == (
        "Guten Tag,\n\nleider wurde mir die Rücksendung über 49,90 € immer noch nicht erstattet."
        "\nBitte kümmern Sie sich darum."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Super Service!\n\nOn Mon, 23 Nov 2026 at 09:00, Shop <s@shop.example> wrote:\n> q",
            "Super Service!",
        ),
        ("Passt.\n-- \nMax Mustermann\nCEO", "Passt."),
        ("Top\n> alt\n> alt\nwirklich top", "Top\nwirklich top"),
        (
            "Zu langsam.\n\nAm 22.11.2026 um 18:40 schrieb Shop Support\n"
            "<support@shop.example>:\n> Frage",
            "Zu langsam.",
        ),
        (
            "Am Montag kam das Paket nicht an.\nSehr ärgerlich.",
            "Am Montag kam das Paket nicht an.\nSehr ärgerlich.",
        ),
        ("Thanks\r\nSent from my iPhone\r\n", "Thanks"),
    ],
)
def test_reply_text(text: str, expected: str) -> None:
    assert reply_text(text) == expected


def test_html_to_text_skips_quotes_and_styles() -> None:
    html = "<style>x{}</style><p>Gut&nbsp;gemacht</p><blockquote>alt</blockquote><div>Ende</div>"
    assert html_to_text(html).split() == ["Gut", "gemacht", "Ende"]


def test_provider_json() -> None:
    mail = parse_provider_json(
        {
            "from": "Erika Musterfrau <Erika@Example.de>",
            "to": "feedback@shop.example",
            "subject": "Lob",
            "text": "Danke für die schnelle Hilfe!\n\nAm 1.11.2026 schrieb Shop <a@b.de>:\n> x",
            "html": "<p>ignored when text is present</p>",
            "headers": [["Message-ID", "<abc@mx>"], ["Date", "Mon, 23 Nov 2026 10:00:00 +0100"]],
        }
    )
    fields = submission_fields(mail, received_at=NOW)
    submission = FeedbackSubmission.model_validate(fields)
    assert submission.id == "abc@mx"
    assert submission.customer is not None
    assert submission.customer.id == "erika@example.de"
    assert submission.comment == "Danke für die schnelle Hilfe!"
    assert submission.context.subject == "Lob"
    assert submission.channel == "email"


def test_mail_without_feedback_text_is_refused() -> None:
    mail = parse_provider_json({"from": "a@b.de", "text": "> only a quote\n-- \nsig"})
    with pytest.raises(MailError) as caught:
        feedback_comment(mail)
    assert caught.value.field == "text"
    with pytest.raises(MailError):
        parse_provider_json({"from": "no address here", "text": "hi"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The audit's case: formula, name and address, then the quoted original.
        (
            "Rechnung falsch.\n\nMit freundlichen Grüßen\nHans Müller\nMusterstr. 5\n\n"
            "-----Ursprüngliche Nachricht-----\nVon: Shop",
            "Rechnung falsch.",
        ),
        ("Zu spät.\n\nViele Grüße\nAnna", "Zu spät."),
        ("Zu spät.\nBeste Grüße, Anna", "Zu spät."),
        ("Zu spät.\n\nMfG\nH. Müller\nTel.: 030 123456\nhans@example.de", "Zu spät."),
        ("Zu spät.\nLG Max", "Zu spät."),
        ("Zu spät.\n\nViele Grüße aus Köln\nAnna", "Zu spät."),
        ("Too late.\n\nBest regards,\nJames O'Neill\nAcme Ltd.\n+44 20 7946 0000", "Too late."),
        ("Too late.\n\nKind regards\nJ.", "Too late."),
        ("Too late.\n\nRegards,\nTom", "Too late."),
        ("Too late.\n\nCheers,\nTom", "Too late."),
        ("Too late.\n\nThanks,\nTom", "Too late."),
        ("Too late.\n\nThanks and regards\nTom", "Too late."),
        ("Too late.\nBest, James", "Too late."),
        # Look-alikes: a formula's words inside real text.
        (
            "Alles angekommen.\nGrüße an Ihr Team, das war super!\nAnna",
            "Alles angekommen.\nGrüße an Ihr Team, das war super!\nAnna",
        ),
        (
            "Paket kam.\nThanks for the quick help, the refund arrived today.",
            "Paket kam.\nThanks for the quick help, the refund arrived today.",
        ),
        ("Top.\nBest Service Ever", "Top.\nBest Service Ever"),
        ("Bestellung kam nicht.\nBestellnummer A-1", "Bestellung kam nicht.\nBestellnummer A-1"),
        # A formula with real text after it is not a signature ...
        (
            "Zu spät.\n\nViele Grüße\nAnna\n\nPS: Der Karton war auch beschädigt.",
            "Zu spät.\n\nViele Grüße\nAnna\n\nPS: Der Karton war auch beschädigt.",
        ),
        (
            "Danke\nfür nichts.",
            "Danke\nfür nichts.",
        ),
        (
            "Zu spät.\nDanke,\naber das Paket war leider beschädigt und niemand hat sich gemeldet.",
            "Zu spät.\nDanke,\naber das Paket war leider beschädigt und niemand hat sich gemeldet.",
        ),
        # ... and nor is one with nothing before it: the thanks are the feedback.
        ("Vielen Dank!\nAnna", "Vielen Dank!\nAnna"),
        ("Thanks\r\nSent from my iPhone\r\n", "Thanks"),
        # A signature block that is too long to be one stays.
        (
            "Zu spät.\nGruß\nA\nB\nC\nD\nE\nF\nG",
            "Zu spät.\nGruß\nA\nB\nC\nD\nE\nF\nG",
        ),
    ],
)
def test_closing_formulas_and_what_follows_are_cut(text: str, expected: str) -> None:
    assert reply_text(text) == expected


@pytest.mark.parametrize(
    ("line", "closing"),
    [
        ("Mit freundlichen Grüßen", True),
        ("Mit freundlichem Gruß", True),
        ("Freundliche Grüsse", True),
        ("Viele Grüße,", True),
        ("Liebe Grüße, Anna", True),
        ("Gruß Hans", True),
        ("Danke und viele Grüße", True),
        ("MfG", True),
        ("LG", True),
        ("Best regards", True),
        ("Warm regards,", True),
        ("Yours sincerely", True),
        ("Thank you very much!", True),
        ("Hochachtungsvoll", True),
        ("Servus, Toni", True),
        ("Bis bald", False),
        ("Grüße an Ihr Team, das war super!", False),
        ("Danke für die schnelle Hilfe", False),
        ("thanks, that helped", False),
        ("Regards Team", False),
        ("Best Service Ever", False),
        ("Lg-Fernseher kaputt", False),
    ],
)
def test_is_closing(line: str, closing: bool) -> None:
    assert is_closing(line) is closing


def test_unknown_charset_is_read_as_utf8_else_windows_1252() -> None:
    utf8 = raw_mail("Content-Type: text/plain; charset=x-unknown-charset", "Grüße gehen raus")
    assert parse_rfc822(utf8).text.strip() == "Grüße gehen raus"
    cp1252 = raw_mail(
        "Content-Type: text/plain; charset=x-unknown-charset", "Zu spät", charset="cp1252"
    )
    assert parse_rfc822(cp1252).text.strip() == "Zu spät"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Message-ID: <abc@mx.example>", "abc@mx.example"),
        ("Message-ID:   <abc@mx.example>  (comment)", "abc@mx.example"),
        ("Message-ID: <>", None),
        ("Message-ID: < >", None),
        ("Message-ID: <a b c>", "a b c"),  # not "a": different mails must keep different ids
        ("Message-ID: <a x y>", "a x y"),
        ("Message-ID: no-brackets@mx", "no-brackets@mx"),
        ("Message-ID: <a\x01b>", None),
        ("X-Other: 1", None),
    ],
)
def test_message_id(header: str, expected: str | None) -> None:
    assert parse_rfc822(raw_mail(header)).message_id == expected


def test_rfc_6532_utf8_headers() -> None:
    raw = (
        "From: Müller <müller@b.de>\r\nSubject: Grüße aus Köln\r\n\r\nRechnung falsch.\r\n"
    ).encode()
    mail = parse_rfc822(raw)
    assert mail.sender == "müller@b.de"
    assert mail.subject == "Grüße aus Köln"
    submission = to_submission(mail, received_at=NOW)
    assert isinstance(submission, dict)
    assert submission["customer"]["id"] == "müller@b.de"


@pytest.mark.parametrize("value", ["a@", "<>", "undisclosed-recipients:;", "Anna"])
def test_a_from_header_without_an_address_is_refused(value: str) -> None:
    raw = f"From: {value}\r\n\r\nRechnung falsch.\r\n".encode()
    with pytest.raises(MailError) as caught:
        parse_rfc822(raw)
    assert caught.value.field == "from"


@pytest.mark.parametrize(
    ("date", "used"),
    [
        ("Mon, 23 Nov 2026 10:00:00 +0100", True),
        ("Tue, 24 Nov 2026 11:59:00 +0000", True),  # within a day of the receipt
        ("Fri, 31 Dec 9999 23:59:59 -1200", False),
        ("Wed, 25 Nov 2026 12:00:01 +0000", False),  # more than a day ahead
        ("Thu, 1 Jan 1920 00:00:00 +0000", False),
        ("Mon, 23 Nov 2026 10:00:00 +9999", False),
        ("Mon, 23 Nov 2026 10:00:00", False),  # no zone
        ("gestern", False),
    ],
)
def test_a_date_that_cannot_be_right_falls_back_to_the_time_of_receipt(
    date: str, used: bool
) -> None:
    mail = parse_rfc822(raw_mail(f"Date: {date}"))
    submission = to_submission(mail, received_at=NOW)
    assert isinstance(submission, dict)
    assert ("occurred_at" in submission) is used


def test_nul_is_refused_naming_the_part_of_the_mail() -> None:
    raw = raw_mail("", "Rechnung\x00falsch")
    assert to_submission(parse_rfc822(raw), received_at=NOW) == [
        {
            "field": "text",
            "message": "must not contain the NUL character (U+0000)",
            "type": "value_error",
        }
    ]
    mail = parse_provider_json({"from": "a@b.de", "subject": "Lob", "html": "<p>x\x00</p>"})
    errors = to_submission(mail, received_at=NOW)
    assert isinstance(errors, list)
    assert {error["field"] for error in errors} == {"html"}
    raw = b"From: a@b.de\r\nSubject: =?utf-8?q?a=00b?=\r\n\r\nRechnung falsch.\r\n"
    errors = to_submission(parse_rfc822(raw), received_at=NOW)
    assert isinstance(errors, list)
    assert [error["field"] for error in errors] == ["subject"]

"""Unit tests of the e-mail parser on real-looking MIME mails."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cxloop_collector.email_channel import (
    MailError,
    feedback_comment,
    html_to_text,
    parse_provider_json,
    parse_rfc822,
    reply_text,
    submission_fields,
)
from cxschema import FeedbackSubmission

FIXTURES = Path(__file__).parent / "fixtures"


def test_multipart_alternative_quoted_printable_german_reply() -> None:
    mail = parse_rfc822((FIXTURES / "mail_multipart_qp_de.eml").read_bytes())
    assert mail.sender == "anna.schmidt@example.de"
    assert (
        mail.subject == "AW: Wie zufrieden waren Sie mit Ihrer Bestellung? Überprüfung Nr. A-1001"
    )
    assert mail.message_id == "CAF3x9Qm7+7dKp@mail.example.de"
    assert mail.sent_at is not None
    assert mail.sent_at.astimezone(UTC) == datetime(2026, 11, 23, 9, 17, 36, tzinfo=UTC)
    assert feedback_comment(mail) == (
        "Hallo zusammen,\n\ndie Lieferung kam drei Tage zu spät und der Karton war beschädigt."
        " Die Hotline war aber sehr freundlich.\n\nViele Grüße\nAnna"
    )


def test_html_only_base64_english_reply() -> None:
    mail = parse_rfc822((FIXTURES / "mail_html_only_base64_en.eml").read_bytes())
    assert mail.sender == "james.oneill@example.co.uk"
    assert mail.text == ""
    comment = feedback_comment(mail)
    assert comment.startswith("Hi team,")
    assert "logging me out at checkout – I tried three times and gave up. Really" in comment
    assert comment.endswith("Best,\nJames")
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
    fields = submission_fields(mail)
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

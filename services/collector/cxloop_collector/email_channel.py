"""Inbound e-mail as feedback: parsing raw RFC 822 or a provider's JSON, keeping only the reply.

Quoted replies ("Am ... schrieb ...:", "On ... wrote:", Outlook headers, "> " lines) and
signatures ("-- ", mobile footers, and a closing formula such as "Viele Grüße" or "Best
regards" with the short name and address block after it) are not feedback and are removed from
the comment.

Mail is parsed leniently, as mail clients do: an unknown charset is read as UTF-8 (else
Windows-1252), raw UTF-8 headers (RFC 6532) are read as such, a Message-ID that is not one is
used as written or ignored, and a Date that cannot be right is replaced by the time of receipt.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import HeaderParseError, MessageError
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Final

from pydantic import ValidationError

from cxloop_collector.intake import Errors, field_errors, moment_error
from cxloop_collector.mail_text import html_to_text, reply_text
from cxschema import PLAIN_SUBMISSION, Plain
from cxschema.events import MAX_COMMENT_CHARS, MAX_ID_CHARS


class MailError(ValueError):
    """An e-mail that cannot become feedback; the message says why, `field` names what."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class InboundMail:
    """The parts of an inbound e-mail that feedback is made of."""

    sender: str
    subject: str
    text: str
    html: str
    message_id: str | None
    sent_at: datetime | None


_HEADERS: Final = policy.default.header_factory


def _decoded(data: bytes) -> str:
    """Text of unlabelled or mislabelled bytes: UTF-8, else Windows-1252 (what older mail
    software writes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _raw_header(message: Message, name: str) -> str | None:
    """The first header `name`, unfolded, its raw bytes beyond ASCII read as UTF-8 (RFC 6532:
    `From: Müller <müller@b.de>` sent as is); `BytesParser` keeps them as surrogate escapes,
    which no event may hold."""
    for key, value in message.raw_items():
        if key.lower() == name:
            text = _decoded(str(value).encode("utf-8", "surrogateescape"))
            return "".join(text.splitlines()).strip()
    return None


def _sender(value: str) -> str:
    """The first e-mail address of a From header, lower-cased."""
    try:
        candidates: list[str] = [address.addr_spec for address in _HEADERS("from", value).addresses]
    except (HeaderParseError, IndexError, ValueError, TypeError):
        # The structured parser raises on some broken headers ("a@"); the simple one does not.
        candidates = [address for _, address in getaddresses([value])]
    for candidate in candidates:
        local, at, domain = candidate.strip().rpartition("@")
        if at and local and domain:
            return candidate.strip().lower()
    raise MailError("from", "the sender has no e-mail address")


def _subject(value: str | None) -> str:
    """A Subject header with its RFC 2047 encoded words decoded."""
    if not value:
        return ""
    try:
        return str(_HEADERS("subject", value)).strip()
    except (HeaderParseError, IndexError, ValueError, TypeError):
        return value.strip()


_MESSAGE_ID: Final = re.compile(r"<([^<>\s]+)>")


def _message_id(value: str | None) -> str | None:
    """The event id of a Message-ID header: the id between its angle brackets; a header that
    is not a valid msg-id (`<a b c>`) counts as written, with its whitespace collapsed, so that
    different mails keep different ids and the same mail the same one. None when there is no
    id in it (`<>`) or it holds control characters."""
    if not value:
        return None
    text = " ".join(value.split())
    match = _MESSAGE_ID.search(text)
    cleaned = match[1] if match else text.strip("<> ")
    if not cleaned or not cleaned.isprintable():
        return None
    if len(cleaned) > MAX_ID_CHARS:
        return "mid-" + hashlib.sha256(cleaned.encode()).hexdigest()[:40]
    return cleaned


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return sent if sent.tzinfo is not None else None


def _content(part: MIMEPart) -> str:
    """A text part's content; one in an unknown charset read as UTF-8, else Windows-1252."""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        return _decoded(payload) if isinstance(payload, bytes) else ""


def parse_rfc822(raw: bytes) -> InboundMail:
    """Parse a raw message: MIME parts, transfer encodings and RFC 2047 headers decoded."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    from_header = _raw_header(message, "from")
    if from_header is None:
        raise MailError("from", "the message has no From header")
    sender = _sender(from_header)
    try:
        plain_part = message.get_body(preferencelist=("plain",))
        html_part = message.get_body(preferencelist=("html",))
        text = "" if plain_part is None else _content(plain_part)
        html = "" if html_part is None else _content(html_part)
    except (MessageError, LookupError, ValueError, IndexError, TypeError) as exc:
        # The email package's answers to broken MIME structure; a mail client shows nothing.
        raise MailError("(body)", f"the message body cannot be read: {exc}") from None
    return InboundMail(
        sender=sender,
        subject=_subject(_raw_header(message, "subject")),
        text=text,
        html=html,
        message_id=_message_id(_raw_header(message, "message-id")),
        sent_at=_date(_raw_header(message, "date")),
    )


def _header(headers: Any, name: str) -> str | None:
    if isinstance(headers, dict):
        for key, value in headers.items():
            if str(key).lower() == name:
                return value if isinstance(value, str) else None
    if isinstance(headers, list):
        for item in headers:
            if isinstance(item, (list, tuple)) and len(item) == 2 and str(item[0]).lower() == name:
                return item[1] if isinstance(item[1], str) else None
            if isinstance(item, dict) and str(item.get("name", "")).lower() == name:
                value = item.get("value")
                return value if isinstance(value, str) else None
    return None


def parse_provider_json(document: Any) -> InboundMail:
    """Parse `{"from", "to", "subject", "text", "html", "headers"}` as inbound-mail services
    post it (headers as an object, or a list of pairs or of {"name", "value"})."""
    if not isinstance(document, dict):
        raise MailError("(body)", "a JSON object is required")
    sender = document.get("from")
    if not isinstance(sender, str) or not sender.strip():
        raise MailError("from", "the sender address is required")
    for name in ("subject", "text", "html"):
        if document.get(name) is not None and not isinstance(document[name], str):
            raise MailError(name, "must be a string")
    headers = document.get("headers")
    return InboundMail(
        sender=_sender(sender),
        subject=str(document.get("subject") or "").strip(),
        text=str(document.get("text") or ""),
        html=str(document.get("html") or ""),
        message_id=_message_id(_header(headers, "message-id")),
        sent_at=_date(_header(headers, "date")),
    )


def feedback_comment(mail: InboundMail) -> str:
    """The feedback in a mail: the plain text (else the HTML's text) without quotes and
    signatures, cut to the comment limit."""
    body = mail.text if mail.text.strip() else html_to_text(mail.html)
    comment = reply_text(body)
    if not comment:
        raise MailError("text", "no feedback text left after removing quotes and signatures")
    return comment[:MAX_COMMENT_CHARS]


def submission_fields(mail: InboundMail, *, received_at: datetime) -> dict[str, Any]:
    """The native event fields of a mail (channel e-mail; the sender is the customer).

    The Date header is the event's time unless it cannot be right (before 1970, after 2099, or
    more than a day after the mail reached the collector): a sender's clock is not the
    customer's to fix, so such a mail is taken at its time of receipt, as mail clients sort
    it, rather than refused."""
    fields: dict[str, Any] = {
        "channel": "email",
        "customer": {"id": mail.sender[:200]},
        "comment": feedback_comment(mail),
        "context": {"subject": mail.subject[:1000]},
    }
    if mail.message_id:
        fields["id"] = mail.message_id
    if mail.sent_at is not None and moment_error(mail.sent_at, received_at) is None:
        fields["occurred_at"] = mail.sent_at
    return fields


_MAIL_FIELDS: Final = {
    "customer.id": "from",
    "context.subject": "subject",
    "id": "message-id",
    "occurred_at": "date",
}


def to_submission(mail: InboundMail, *, received_at: datetime) -> Plain | Errors:
    """A mail as a validated submission, or its errors named by the parts of the mail (`from`,
    `subject`, `text` or `html`) rather than by the event's fields they became."""
    fields = submission_fields(mail, received_at=received_at)
    try:
        return PLAIN_SUBMISSION.validate_python(fields)
    except ValidationError as exc:
        names = {**_MAIL_FIELDS, "comment": "text" if mail.text.strip() else "html"}
        return [
            {**error, "field": names.get(error["field"], error["field"])}
            for error in field_errors(exc)
        ]

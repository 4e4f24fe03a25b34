"""Inbound e-mail as feedback: parsing raw RFC 822 or a provider's JSON, keeping only the reply.

Quoted replies ("Am ... schrieb ...:", "On ... wrote:", Outlook headers, "> " lines) and
signatures ("-- " and mobile footers) are not feedback and are removed from the comment.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, Final

from cxschema.events import MAX_COMMENT_CHARS, MAX_ID_CHARS

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
_BLOCK_TAGS: Final = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
)
_SKIP_TAGS: Final = frozenset({"script", "style", "head", "title", "blockquote"})
_QUOTE_CLASSES: Final = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "OutlookMessageHeader")


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
    text = "\n".join(kept)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _address(value: str) -> str:
    pairs = getaddresses([value])
    addresses = [addr for _, addr in pairs if "@" in addr]
    if not addresses:
        raise MailError("from", "the sender has no e-mail address")
    return addresses[0].strip().lower()


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    cleaned = value.strip().strip("<>").strip()
    if not cleaned:
        return None
    if len(cleaned) > MAX_ID_CHARS:
        return "mid-" + hashlib.sha256(cleaned.encode()).hexdigest()[:40]
    return cleaned


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return sent if sent.tzinfo is not None else None


def parse_rfc822(raw: bytes) -> InboundMail:
    """Parse a raw message: MIME parts, transfer encodings and RFC 2047 headers decoded."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    sender_header = message["from"]
    if sender_header is None:
        raise MailError("from", "the message has no From header")
    addresses: tuple[Address, ...] = getattr(sender_header, "addresses", ())
    sender = addresses[0].addr_spec.lower() if addresses else _address(str(sender_header))
    if "@" not in sender:
        raise MailError("from", "the sender has no e-mail address")
    text = html = ""
    plain_part = message.get_body(preferencelist=("plain",))
    if plain_part is not None:
        text = str(plain_part.get_content())
    html_part = message.get_body(preferencelist=("html",))
    if html_part is not None:
        html = str(html_part.get_content())
    return InboundMail(
        sender=sender,
        subject=str(message["subject"] or "").strip(),
        text=text,
        html=html,
        message_id=_message_id(message["message-id"]),
        sent_at=_date(message["date"]),
    )


def _header(headers: Any, name: str) -> str | None:
    if isinstance(headers, dict):
        for key, value in headers.items():
            if str(key).lower() == name:
                return str(value)
    if isinstance(headers, list):
        for item in headers:
            if isinstance(item, (list, tuple)) and len(item) == 2 and str(item[0]).lower() == name:
                return str(item[1])
            if isinstance(item, dict) and str(item.get("name", "")).lower() == name:
                return str(item.get("value", ""))
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
        sender=_address(sender),
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


def submission_fields(mail: InboundMail) -> dict[str, Any]:
    """The native event fields of a mail (channel e-mail; the sender is the customer)."""
    fields: dict[str, Any] = {
        "channel": "email",
        "customer": {"id": mail.sender[:200]},
        "comment": feedback_comment(mail),
        "context": {"subject": mail.subject[:1000]},
    }
    if mail.message_id:
        fields["id"] = mail.message_id
    if mail.sent_at is not None:
        fields["occurred_at"] = mail.sent_at
    return fields

"""One-click ratings from survey e-mails: HMAC-signed tokens naming customer, survey and expiry.

A token reads `<payload>.<signature>`, both base64url without padding: the payload is compact
JSON `{"c": customer, "s": survey, "e": expiry (Unix seconds), "n": nonce}` and the signature
HMAC-SHA256 of the payload text. The nonce makes each link unique; a link records one score.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import orjson

SURVEY_RANGES: Final = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
SECRET_FILE: Final = "collector-rating.secret"  # noqa: S105 (a file name)


class RatingError(ValueError):
    """A token that is forged, malformed or expired, or a score out of the survey's range."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RatingClaim:
    """What a valid token says."""

    customer: str
    survey: str
    expires_at: datetime
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RatingSigner:
    """Issues and verifies rating tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the rating secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, *, customer: str, survey: str, expires_at: datetime) -> str:
        """A new token for one rating by `customer` on `survey` (nps, csat or ces)."""
        if survey not in SURVEY_RANGES:
            raise RatingError("survey", f"survey must be one of {', '.join(SURVEY_RANGES)}")
        if not _valid_customer(customer):
            raise RatingError(
                "customer", "customer must be 1 to 200 characters, not blank, without U+0000"
            )
        payload = _b64(
            orjson.dumps(
                {
                    "c": customer,
                    "s": survey,
                    "e": int(expires_at.timestamp()),
                    "n": secrets.token_urlsafe(12),
                }
            )
        )
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, *, now: datetime | None = None) -> RatingClaim:
        """The claim of a genuine, unexpired token; `RatingError` otherwise."""
        payload, _, signature = token.partition(".")
        if not payload or not signature or len(token) > 2000:
            raise RatingError("invalid", "the rating link is incomplete")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise RatingError("invalid", "the rating link is not genuine")
        try:
            claim = orjson.loads(_unb64(payload))
            customer, survey = str(claim["c"]), str(claim["s"])
            expires_at = datetime.fromtimestamp(int(claim["e"]), tz=UTC)
            nonce = str(claim["n"])
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise RatingError("invalid", "the rating link is malformed") from None
        if survey not in SURVEY_RANGES:
            raise RatingError("invalid", "the rating link names an unknown survey")
        if not _valid_customer(customer):
            # Genuine but unusable (issued before this check): the event would be refused.
            raise RatingError("invalid", "the rating link names no valid customer")
        if (now or datetime.now(UTC)) >= expires_at:
            raise RatingError("expired", "the rating link has expired")
        return RatingClaim(customer=customer, survey=survey, expires_at=expires_at, nonce=nonce)


def _valid_customer(customer: str) -> bool:
    """What `Customer.id` accepts: 1 to 200 characters, not blank, no U+0000 (the generated
    rating event is built from it, so a link must not promise what the event refuses)."""
    return bool(customer.strip()) and len(customer) <= 200 and "\x00" not in customer


def check_score(survey: str, score: int) -> None:
    """`RatingError` when `score` is outside the survey's scale."""
    low, high = SURVEY_RANGES[survey]
    if not low <= score <= high:
        raise RatingError("score", f"a {survey} score is between {low} and {high}")


def expiry(days: float, *, now: datetime | None = None) -> datetime:
    """The expiry `days` from now."""
    return (now or datetime.now(UTC)) + timedelta(days=days)


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else the one kept in `data_dir` (created once, mode 0600), so
    that links stay valid across restarts."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip().encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret.encode()


def link_base(public_url: str, token: str) -> str:
    """The rating link without its score: a survey mail appends 0..10 (or 1..5, 1..7)."""
    return f"{public_url.rstrip('/')}/v1/channels/email/rate?t={token}&score="

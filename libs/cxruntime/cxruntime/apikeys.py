"""API keys: created, listed, revoked; stored as SHA-256 of the key, compared in constant time.

A key reads `cxk_<key_id>_<secret>`: the key id (public, the lookup) and 256 random bits. Since
the secret is random and long, a fast hash is as good as a slow one and keeps authentication
cheap on the hot ingest path. Functions take a session and never commit: the caller owns the
transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cxruntime.orm import ApiKeyRow
from cxschema import CHANNELS

Scope = Literal["ingest", "read", "cases", "admin"]
SCOPES: Final[tuple[str, ...]] = get_args(Scope)
KEY_PREFIX: Final = "cxk_"
LIVE_NAME_INDEX: Final = "api_keys_live_name"
"""The unique index on the names of keys that are not revoked (a revoked key's name is free)."""


class ApiKeyRequestError(ValueError):
    """A key request that cannot be honoured (unknown scope, duplicate name, ...)."""


@dataclass(frozen=True)
class ApiKey:
    """An authenticated key: what it may do. The secret is never kept."""

    key_id: str
    name: str
    scopes: frozenset[str]
    channels: frozenset[str]
    origins: frozenset[str]
    team: str | None
    publishable: bool
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        """True when the key carries `scope` (`admin` carries every scope)."""
        return scope in self.scopes or "admin" in self.scopes

    def allows_channel(self, channel: str) -> bool:
        """True when the key may post to `channel` (no channel list: every channel)."""
        return not self.channels or channel in self.channels


def hash_key(key: str) -> str:
    """SHA-256 hex of the whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key_id(key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    rest = key[len(KEY_PREFIX) :]
    key_id, sep, secret = rest.partition("_")
    if not sep or not key_id or len(secret) < 20 or len(key_id) > 32:
        return None
    return key_id


def verify(key: str, row_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(key), row_hash)


def _to_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        scopes=frozenset(row.scopes),
        channels=frozenset(row.channels or ()),
        origins=frozenset(row.origins or ()),
        team=row.team,
        publishable=row.publishable,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def validate_request(
    *,
    name: str,
    scopes: Sequence[str],
    channels: Sequence[str],
    origins: Sequence[str],
    publishable: bool,
) -> None:
    """Raise `ApiKeyRequestError` with a clear message when the requested key makes no sense."""
    if not name or len(name) > 200 or name != name.strip():
        raise ApiKeyRequestError(
            "a key needs a name of 1 to 200 characters, without white space at either end"
        )
    if not name.isprintable():
        raise ApiKeyRequestError("a key's name must not hold control characters (tab, newline)")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ApiKeyRequestError(
            f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}"
        )
    bad_channels = sorted(set(channels) - set(CHANNELS))
    if bad_channels:
        raise ApiKeyRequestError(
            f"unknown channels {', '.join(bad_channels)}; known: {', '.join(CHANNELS)}"
        )
    if not publishable and origins:
        raise ApiKeyRequestError("allowed origins are for publishable keys (--publishable)")
    if publishable:
        if set(scopes) != {"ingest"}:
            raise ApiKeyRequestError("a publishable key may only have the scope ingest")
        if set(channels) != {"web"}:
            raise ApiKeyRequestError(
                "a publishable key may only post on the channel web (--channels web)"
            )
        if not origins:
            raise ApiKeyRequestError(
                "a publishable key needs at least one allowed origin (--origins)"
            )
    for origin in origins:
        if not origin.startswith(("https://", "http://")) or origin.endswith("/"):
            raise ApiKeyRequestError(
                f"origin {origin!r} must look like https://shop.example (no path)"
            )


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    scopes: Sequence[str],
    channels: Sequence[str] = (),
    origins: Sequence[str] = (),
    team: str | None = None,
    publishable: bool = False,
) -> tuple[ApiKey, str]:
    """Add a key; returns it and the secret key string, which is shown once and never stored.

    The name must not belong to a live key; a revoked key's name may be given again (the
    revoked key keeps its row)."""
    validate_request(
        name=name, scopes=scopes, channels=channels, origins=origins, publishable=publishable
    )
    live = await session.scalar(
        select(ApiKeyRow.key_id).where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
    )
    if live is not None:
        raise ApiKeyRequestError(_name_taken(name))
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}{key_id}_{secret}"
    row = ApiKeyRow(
        key_id=key_id,
        name=name,
        key_hash=hash_key(key),
        scopes=sorted(set(scopes)),
        channels=sorted(set(channels)),
        origins=sorted(set(origins)),
        team=team,
        publishable=publishable,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Another `keys create` with the same name committed in between.
        if LIVE_NAME_INDEX in str(exc.orig):
            raise ApiKeyRequestError(_name_taken(name)) from None
        raise
    return _to_key(row), key


def _name_taken(name: str) -> str:
    return f"a key named {name!r} exists already; revoke it or choose another name"


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.name))
    return [_to_key(row) for row in rows]


async def revoke_key(session: AsyncSession, *, name: str) -> bool:
    """Revoke the key named `name`; False when no live key has that name."""
    result = await session.execute(
        update(ApiKeyRow)
        .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(getattr(result, "rowcount", 0))


async def authenticate(session: AsyncSession, key: str) -> ApiKey | None:
    """The live key matching `key`, or None."""
    key_id = parse_key_id(key)
    if key_id is None:
        return None
    row = await session.get(ApiKeyRow, key_id)
    if row is None or row.revoked_at is not None or not verify(key, row.key_hash):
        return None
    return _to_key(row)

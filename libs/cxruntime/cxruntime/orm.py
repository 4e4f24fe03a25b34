"""Tables the runtime owns: API keys, shared by every service's authentication."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, DateTime, Index, MetaData, String, Text, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class _Base(DeclarativeBase):
    metadata = MetaData()


metadata = _Base.metadata


class ApiKeyRow(_Base):
    """An API key: its public id, the SHA-256 of the whole key, and what it may do."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    channels: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    origins: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    team: Mapped[str | None] = mapped_column(String(200), nullable=True)
    publishable: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        # Unique among live keys only: a revoked key keeps its row (and name) for the audit
        # trail, and the name can be given to a new key.
        Index(
            "api_keys_live_name",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

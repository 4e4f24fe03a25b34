"""Tables the collector owns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData, SmallInteger, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class _Base(DeclarativeBase):
    metadata = MetaData()


metadata = _Base.metadata


class RatingVoteRow(_Base):
    """A one-click rating link that recorded its score: one row per link (its nonce)."""

    __tablename__ = "collector_rating_votes"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer: Mapped[str] = mapped_column(String(200))
    survey: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(SmallInteger)
    event_id: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

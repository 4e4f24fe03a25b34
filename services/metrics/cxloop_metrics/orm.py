"""Tables of the metrics service.

- `metrics_minute`, `metrics_hour`, `metrics_day`, `metrics_week`: pre-aggregated buckets, one
  row per bucket, cube and dimension tuple (minute buckets hold cube 0 only, week buckets
  cubes 1 and 2 only). A cube is a projection: cube 0 keeps all five dimensions, cube 1
  only (touchpoint, channel, journey_stage) and cube 2 only (channel, region, segment); dropped
  dimensions hold ''. A query reads the smallest cube that has every dimension it groups or
  filters by, so the common dashboards scan hundreds of rows per day, not thousands.
- `metrics_seen`: the uid of every counted event (deduplication), pruned after a retention.
- `metrics_offsets`: the consumer's positions, written in the same transaction as the buckets.
- `metrics_meta`: settings the stored buckets depend on (the time zone).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cxloop_metrics.measures import COUNT_COLUMNS, DIMENSIONS, SUM_COLUMNS


class _Base(DeclarativeBase):
    metadata = MetaData()


metadata = _Base.metadata

CUBES: Final[dict[int, tuple[str, ...]]] = {
    1: ("touchpoint", "channel", "journey_stage"),
    2: ("channel", "region", "segment"),
    0: DIMENSIONS,
}
"""Cube id -> the dimensions it keeps, smallest first."""


def _bucket_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("cube", SmallInteger, primary_key=True),
        Column("bucket_start", DateTime(timezone=True), primary_key=True),
        *(Column(dim, Text, primary_key=True) for dim in DIMENSIONS),
        *(Column(col, Integer, nullable=False, server_default="0") for col in COUNT_COLUMNS),
        *(Column(col, Double, nullable=False, server_default="0") for col in SUM_COLUMNS),
    )


MINUTE_BUCKETS: Final = _bucket_table("metrics_minute")
HOUR_BUCKETS: Final = _bucket_table("metrics_hour")
DAY_BUCKETS: Final = _bucket_table("metrics_day")
WEEK_BUCKETS: Final = _bucket_table("metrics_week")
BUCKET_TABLES: Final = {
    "minute": MINUTE_BUCKETS,
    "hour": HOUR_BUCKETS,
    "day": DAY_BUCKETS,
    "week": WEEK_BUCKETS,
}


class SeenEvent(_Base):
    """An event already counted, by `cxschema.feedback_uid` (128 bits as a UUID)."""

    __tablename__ = "metrics_seen"

    uid: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ConsumerOffset(_Base):
    """The next offset to read per partition; authoritative over Kafka's committed offsets."""

    __tablename__ = "metrics_offsets"

    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MetaSetting(_Base):
    """A setting the stored data depends on."""

    __tablename__ = "metrics_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

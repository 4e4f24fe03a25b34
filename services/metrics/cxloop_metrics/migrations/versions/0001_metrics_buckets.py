"""metrics buckets, dedup, offsets

Revision ID: m0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "m0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMENSIONS = ("touchpoint", "channel", "journey_stage", "region", "segment")
COUNT_COLUMNS = (
    "responses",
    *(f"nps_{s}" for s in range(11)),
    *(f"csat_{s}" for s in range(1, 6)),
    *(f"ces_{s}" for s in range(1, 8)),
    "sentiment_n",
    "negative_n",
)
SUM_COLUMNS = ("sentiment_sum", "sentiment_sumsq")


def _bucket_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("cube", sa.SmallInteger(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(dim, sa.Text(), nullable=False) for dim in DIMENSIONS),
        *(sa.Column(c, sa.Integer(), nullable=False, server_default="0") for c in COUNT_COLUMNS),
        *(sa.Column(c, sa.Double(), nullable=False, server_default="0") for c in SUM_COLUMNS),
        sa.PrimaryKeyConstraint("cube", "bucket_start", *DIMENSIONS, name=f"{name}_pkey"),
    )


def upgrade() -> None:
    for name in ("metrics_minute", "metrics_hour", "metrics_day"):
        _bucket_table(name)
    op.create_table(
        "metrics_seen",
        sa.Column("uid", sa.Uuid(), primary_key=True),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    # Rows arrive in seen_at order, so a BRIN index makes the retention DELETE cheap.
    op.create_index(
        "metrics_seen_seen_at_brin", "metrics_seen", ["seen_at"], postgresql_using="brin"
    )
    op.create_table(
        "metrics_offsets",
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "metrics_meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for name in ("metrics_meta", "metrics_offsets", "metrics_seen"):
        op.drop_table(name)
    for name in ("metrics_day", "metrics_hour", "metrics_minute"):
        op.drop_table(name)

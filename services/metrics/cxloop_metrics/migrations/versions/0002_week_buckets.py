"""week buckets for the small cubes

Revision ID: m0002
Revises: m0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "m0002"
down_revision: str | None = "m0001"
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


def upgrade() -> None:
    op.create_table(
        "metrics_week",
        sa.Column("cube", sa.SmallInteger(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(dim, sa.Text(), nullable=False) for dim in DIMENSIONS),
        *(sa.Column(c, sa.Integer(), nullable=False, server_default="0") for c in COUNT_COLUMNS),
        *(sa.Column(c, sa.Double(), nullable=False, server_default="0") for c in SUM_COLUMNS),
        sa.PrimaryKeyConstraint("cube", "bucket_start", *DIMENSIONS, name="metrics_week_pkey"),
    )
    # Bucket rows are counters updated in place; free space on each page lets PostgreSQL
    # update them without touching the index (HOT), which keeps the tables and their indexes
    # from bloating between autovacuum runs.
    for table in ("metrics_minute", "metrics_hour", "metrics_day", "metrics_week"):
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")
    # Fill the weeks from the day buckets already stored (cubes 1 and 2).
    measures = ", ".join((*COUNT_COLUMNS, *SUM_COLUMNS))
    sums = ", ".join(f"sum({c})" for c in (*COUNT_COLUMNS, *SUM_COLUMNS))
    dims = ", ".join(DIMENSIONS)
    op.execute(
        f"""
        INSERT INTO metrics_week (cube, bucket_start, {dims}, {measures})
        SELECT d.cube,
               (date_trunc('week', d.bucket_start AT TIME ZONE m.value)) AT TIME ZONE m.value,
               {", ".join("d." + x for x in DIMENSIONS)}, {sums}
        FROM metrics_day d CROSS JOIN metrics_meta m
        WHERE m.key = 'timezone' AND d.cube IN (1, 2)
        GROUP BY 1, 2, {", ".join("d." + x for x in DIMENSIONS)}
        """  # noqa: S608 (constants only)
    )


def downgrade() -> None:
    op.drop_table("metrics_week")
    for table in ("metrics_minute", "metrics_hour", "metrics_day"):
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")

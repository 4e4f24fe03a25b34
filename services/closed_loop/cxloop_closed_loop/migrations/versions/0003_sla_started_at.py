"""cases.sla_started_at: when the current SLA period began (the opening or the latest reopening)

Revision ID: cl0003
Revises: cl0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cl0003"
down_revision: str | None = "cl0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("sla_started_at", sa.DateTime(timezone=True), nullable=True))
    # Existing cases: their latest reopening (by feedback or by a person) from the history,
    # else their opening.
    op.execute(
        """
        UPDATE cases SET sla_started_at = COALESCE(
            (SELECT max(h.at) FROM case_history h
             WHERE h.case_id = cases.id AND h.action IN ('reopened', 'reopen')),
            opened_at)
        """
    )
    op.alter_column("cases", "sla_started_at", nullable=False)


def downgrade() -> None:
    op.drop_column("cases", "sla_started_at")

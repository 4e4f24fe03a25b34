"""cases.acknowledge_breached_at, resolve_breached_at: SLA breaches of the current period

Before this revision an escalation overwrote `acknowledge_due_at`/`resolve_due_at` with the next
rung's deadline. For existing cases the first `escalated` history row of each deadline since
the start of the current SLA period gives back both the breach and the original deadline (its
`due_at`).

Revision ID: cl0004
Revises: cl0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cl0004"
down_revision: str | None = "cl0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for kind in ("acknowledge", "resolve"):
        op.add_column(
            "cases", sa.Column(f"{kind}_breached_at", sa.DateTime(timezone=True), nullable=True)
        )
        op.execute(
            f"""
            UPDATE cases SET {kind}_breached_at = first.due_at, {kind}_due_at = first.due_at
            FROM (
                SELECT h.case_id, min((h.details ->> 'due_at')::timestamptz) AS due_at
                FROM case_history h JOIN cases c ON c.id = h.case_id
                WHERE h.action = 'escalated' AND h.details ->> 'deadline' = '{kind}'
                  AND h.at >= c.sla_started_at
                GROUP BY h.case_id
            ) AS first
            WHERE cases.id = first.case_id
            """  # noqa: S608 (kind is one of two literals)
        )


def downgrade() -> None:
    op.drop_column("cases", "resolve_breached_at")
    op.drop_column("cases", "acknowledge_breached_at")

"""case_history.actor as text: `key:<name>` of a key with the longest name (200) is 204 long

Revision ID: cl0002
Revises: cl0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cl0002"
down_revision: str | None = "cl0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # varchar to text is binary-coercible in PostgreSQL: no table rewrite.
    op.alter_column("case_history", "actor", type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    op.alter_column(
        "case_history",
        "actor",
        type_=sa.String(200),
        existing_nullable=False,
        postgresql_using="left(actor, 200)",
    )

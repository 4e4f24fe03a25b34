"""api key names unique among live keys only: a revoked key's name can be used again

The revoked row stays (audit: who could do what, until when); only keys that still work
need distinct names, since `cxloop keys revoke NAME` picks the key by name.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The name PostgreSQL gave the column's UNIQUE of 0001.
    op.drop_constraint("api_keys_name_key", "api_keys", type_="unique")
    op.create_index(
        "api_keys_live_name",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    # Fails while a name is used twice (a revoked key and a newer one): rename or delete first.
    op.drop_index("api_keys_live_name", table_name="api_keys")
    op.create_unique_constraint("api_keys_name_key", "api_keys", ["name"])

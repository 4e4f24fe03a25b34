"""cases, case feedback, history, SLA timers, deliveries (outbox) and delivery attempts

Revision ID: cl0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cl0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
ACTIVE = "status IN ('open', 'acknowledged', 'contacted')"


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=True),
        sa.Column("touchpoint", sa.String(200), nullable=False),
        sa.Column("team", sa.String(100), nullable=False),
        sa.Column("route", sa.String(500), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("labels", postgresql.JSONB(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("feedback_count", sa.Integer(), nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("acknowledged_at", TZ, nullable=True),
        sa.Column("contacted_at", TZ, nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("acknowledge_due_at", TZ, nullable=True),
        sa.Column("resolve_due_at", TZ, nullable=True),
        sa.Column("root_cause", sa.String(100), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("contact_outcome", sa.String(100), nullable=True),
    )
    op.create_index(
        "cases_one_active_per_customer_touchpoint",
        "cases",
        ["customer_key", "touchpoint"],
        unique=True,
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index(
        "cases_by_customer_touchpoint", "cases", ["customer_key", "touchpoint", "resolved_at"]
    )
    op.create_index("cases_by_status_team", "cases", ["status", "team", "severity"])
    op.create_index("cases_by_opened", "cases", ["opened_at"])

    op.create_table(
        "case_feedback",
        sa.Column("feedback_uid", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("added_at", TZ, nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("event", postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_case_feedback_case_id", "case_feedback", ["case_id"])

    op.create_table(
        "case_history",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_case_history_case_id", "case_history", ["case_id"])

    op.create_table(
        "case_timers",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("fired_at", TZ, nullable=True),
        sa.Column("cancelled_at", TZ, nullable=True),
    )
    op.create_index("ix_case_timers_case_id", "case_timers", ["case_id"])
    op.create_index(
        "case_timers_due",
        "case_timers",
        ["due_at"],
        postgresql_where=sa.text("fired_at IS NULL AND cancelled_at IS NULL"),
    )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("receiver", sa.String(100), nullable=False),
        sa.Column("receiver_type", sa.String(20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("leased_until", TZ, nullable=True),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("dead_at", TZ, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_deliveries_case_id", "deliveries", ["case_id"])
    op.create_index(
        "deliveries_pending",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("deliveries_by_status", "deliveries", ["status", "created_at"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(40), sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    for table in (
        "delivery_attempts",
        "deliveries",
        "case_timers",
        "case_history",
        "case_feedback",
        "cases",
    ):
        op.drop_table(table)

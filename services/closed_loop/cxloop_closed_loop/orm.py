"""Tables of the closed loop: cases, their feedback, history, SLA timers and the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ACTIVE_SQL = "status IN ('open', 'acknowledged', 'contacted')"


class _Base(DeclarativeBase):
    metadata = MetaData()


metadata = _Base.metadata


class CaseRow(_Base):
    """A case: one per customer and touchpoint while it is active."""

    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    touchpoint: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(100))
    route: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(String(200), nullable=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    feedback_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sla_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Start of the current SLA period: the opening, or the latest reopening. Deadlines
    recomputed within the period (a severity rise) count from here, not from `opened_at`."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    contacted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledge_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The SLA deadlines of the current period; an escalation does not move them (the next
    rung's deadline lives in `case_timers` and in the `escalated` history)."""
    acknowledge_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When a deadline of the current SLA period passed unmet (the deadline itself); cleared by
    a reopening, while the history keeps the earlier breach."""
    root_cause: Mapped[str | None] = mapped_column(String(100))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    contact_outcome: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index(
            "cases_one_active_per_customer_touchpoint",
            "customer_key",
            "touchpoint",
            unique=True,
            postgresql_where=text(ACTIVE_SQL),
        ),
        Index("cases_by_customer_touchpoint", "customer_key", "touchpoint", "resolved_at"),
        Index("cases_by_status_team", "status", "team", "severity"),
        Index("cases_by_opened", "opened_at"),
    )


class CaseFeedbackRow(_Base):
    """A feedback event attached to a case; its uid makes redelivery a no-op."""

    __tablename__ = "case_feedback"

    feedback_uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(500))
    channel: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    severity: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    event: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Declared so one flush inserts the case before rows referring to it; never loaded.
    case: Mapped[CaseRow] = relationship(lazy="raise")


class CaseHistoryRow(_Base):
    """One change of a case, who made it and what it was (the audit trail)."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(Text)  # "system" or "key:<name>" (names up to 200)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    case: Mapped[CaseRow] = relationship(lazy="raise")


class CaseTimerRow(_Base):
    """An SLA deadline; fired or cancelled at most once, kept in PostgreSQL across restarts."""

    __tablename__ = "case_timers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    case: Mapped[CaseRow] = relationship(lazy="raise")

    __table_args__ = (
        Index(
            "case_timers_due",
            "due_at",
            postgresql_where=text("fired_at IS NULL AND cancelled_at IS NULL"),
        ),
    )


class DeliveryRow(_Base):
    """One notification for one receiver: the outbox row, its delivery state, its dead letter.

    `id` is the Standard Webhooks `webhook-id`: the same on every retry and every re-send.
    """

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    receiver: Mapped[str] = mapped_column(String(100))
    receiver_type: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    case: Mapped[CaseRow] = relationship(lazy="raise")

    __table_args__ = (
        Index(
            "deliveries_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("deliveries_by_status", "status", "created_at"),
    )


class DeliveryAttemptRow(_Base):
    """One try to deliver a notification and how it went."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(40), ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    delivery: Mapped[DeliveryRow] = relationship(lazy="raise")

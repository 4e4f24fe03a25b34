"""SQL of the closed loop. Functions take a session and never commit: the caller owns the
transaction (so a case change and its outbox rows commit together)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, not_, or_, select, tuple_, update
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from cxloop_closed_loop.lifecycle import ACTIVE
from cxloop_closed_loop.orm import (
    CaseFeedbackRow,
    CaseHistoryRow,
    CaseRow,
    CaseTimerRow,
    DeliveryAttemptRow,
    DeliveryRow,
)


async def feedback_seen(session: AsyncSession, uids: Sequence[str]) -> set[str]:
    """Which of these feedback uids are already attached to a case."""
    if not uids:
        return set()
    rows = await session.scalars(
        select(CaseFeedbackRow.feedback_uid).where(CaseFeedbackRow.feedback_uid.in_(uids))
    )
    return set(rows)


async def active_case(
    session: AsyncSession, *, customer_key: str, touchpoint: str
) -> CaseRow | None:
    """The active case of a customer on a touchpoint, locked."""
    result = await session.scalars(
        select(CaseRow)
        .where(
            CaseRow.customer_key == customer_key,
            CaseRow.touchpoint == touchpoint,
            CaseRow.status.in_(ACTIVE),
        )
        .with_for_update()
    )
    return result.first()


async def active_cases(
    session: AsyncSession, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], CaseRow]:
    """Active cases for these (customer_key, touchpoint) pairs, locked, in one query."""
    if not keys:
        return {}
    rows = await session.scalars(
        select(CaseRow)
        .where(
            tuple_(CaseRow.customer_key, CaseRow.touchpoint).in_(list(keys)),
            CaseRow.status.in_(ACTIVE),
        )
        .with_for_update()
    )
    return {(row.customer_key, row.touchpoint): row for row in rows}


async def reopenable_cases(
    session: AsyncSession, keys: Collection[tuple[str, str]], *, resolved_since: datetime
) -> dict[tuple[str, str], CaseRow]:
    """For each pair, its latest case resolved since `resolved_since`, locked."""
    if not keys:
        return {}
    rows = await session.scalars(
        select(CaseRow)
        .where(
            tuple_(CaseRow.customer_key, CaseRow.touchpoint).in_(list(keys)),
            CaseRow.status.in_(("resolved", "closed")),
            CaseRow.resolved_at >= resolved_since,
        )
        .order_by(CaseRow.resolved_at)
        .with_for_update()
    )
    return {(row.customer_key, row.touchpoint): row for row in rows}  # latest wins


async def get_case(
    session: AsyncSession, case_id: uuid.UUID, *, lock: bool = False
) -> CaseRow | None:
    """One case by id."""
    query = select(CaseRow).where(CaseRow.id == case_id)
    if lock:
        query = query.with_for_update()
    result = await session.scalars(query)
    return result.first()


CaseSort = Literal["opened_at", "-opened_at", "due", "-due"]


def _open_deadline() -> Any:
    """The earliest deadline a case still has to meet: acknowledge or resolve while open,
    resolve while acknowledged or contacted, none once resolved."""
    return sql_case(
        (CaseRow.status == "open", func.least(CaseRow.acknowledge_due_at, CaseRow.resolve_due_at)),
        (CaseRow.status.in_(("acknowledged", "contacted")), CaseRow.resolve_due_at),
        else_=None,
    )


def _breached(now: datetime) -> Any:
    """A breach recorded in the current SLA period, or a deadline still to meet that has
    passed (the SLA worker records it on its next tick)."""
    return or_(
        CaseRow.acknowledge_breached_at.is_not(None),
        CaseRow.resolve_breached_at.is_not(None),
        and_(
            CaseRow.status == "open",
            CaseRow.acknowledge_due_at.is_not(None),
            CaseRow.acknowledge_due_at <= now,
        ),
        and_(
            CaseRow.status.in_(ACTIVE),
            CaseRow.resolve_due_at.is_not(None),
            CaseRow.resolve_due_at <= now,
        ),
    )


def _order(sort: CaseSort) -> list[Any]:
    if sort == "opened_at":
        return [CaseRow.opened_at.asc(), CaseRow.id]
    if sort == "-opened_at":
        return [CaseRow.opened_at.desc(), CaseRow.id]
    due = _open_deadline()
    # Cases without a deadline to meet come last either way.
    first = due.asc().nulls_last() if sort == "due" else due.desc().nulls_last()
    return [first, CaseRow.opened_at.desc(), CaseRow.id]


async def list_cases(
    session: AsyncSession,
    *,
    status: Collection[str] = (),
    team: Collection[str] = (),
    severity: Collection[str] = (),
    customer: Collection[str] = (),
    assignee: Collection[str] = (),
    breached: bool | None = None,
    now: datetime | None = None,
    sort: CaseSort = "-opened_at",
    limit: int,
    offset: int,
) -> tuple[list[CaseRow], int]:
    """Cases matching the filters in the order `sort` asks for, and how many match in all.

    Each filter is a set of values a case may have any of; an empty one filters nothing.
    `breached` keeps only cases whose SLA of the current period is (True) or is not (False)
    breached at `now`.
    """
    conditions = [
        column.in_(sorted(set(values)))
        for column, values in (
            (CaseRow.status, status),
            (CaseRow.team, team),
            (CaseRow.severity, severity),
            # A known customer's key is their id: the key's index finds the rows, the id
            # keeps out anonymous cases whose key happens to look like one.
            (CaseRow.customer_key, customer),
            (CaseRow.customer_id, customer),
            (CaseRow.assignee, assignee),
        )
        if values
    ]
    if breached is not None:
        if now is None:
            raise ValueError("the breached filter needs now")
        condition = _breached(now)
        conditions.append(condition if breached else not_(condition))
    total = await session.scalar(select(func.count()).select_from(CaseRow).where(*conditions))
    rows = await session.scalars(
        select(CaseRow).where(*conditions).order_by(*_order(sort)).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)


async def case_feedback(session: AsyncSession, case_id: uuid.UUID) -> list[CaseFeedbackRow]:
    """The feedback attached to a case, oldest first."""
    rows = await session.scalars(
        select(CaseFeedbackRow)
        .where(CaseFeedbackRow.case_id == case_id)
        .order_by(CaseFeedbackRow.added_at, CaseFeedbackRow.feedback_uid)
    )
    return list(rows)


async def case_history(session: AsyncSession, case_id: uuid.UUID) -> list[CaseHistoryRow]:
    """The audit history of a case, oldest first."""
    rows = await session.scalars(
        select(CaseHistoryRow).where(CaseHistoryRow.case_id == case_id).order_by(CaseHistoryRow.id)
    )
    return list(rows)


async def cancel_timers(
    session: AsyncSession, *, case_id: uuid.UUID, kinds: Sequence[str], now: datetime
) -> None:
    """Cancel the case's pending timers of these kinds."""
    await session.execute(
        update(CaseTimerRow)
        .where(
            CaseTimerRow.case_id == case_id,
            CaseTimerRow.kind.in_(kinds),
            CaseTimerRow.fired_at.is_(None),
            CaseTimerRow.cancelled_at.is_(None),
        )
        .values(cancelled_at=now)
    )


async def claim_due_timers(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[CaseTimerRow]:
    """Due timers, locked so another replica skips them."""
    rows = await session.scalars(
        select(CaseTimerRow)
        .where(
            CaseTimerRow.fired_at.is_(None),
            CaseTimerRow.cancelled_at.is_(None),
            CaseTimerRow.due_at <= now,
        )
        .order_by(CaseTimerRow.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows)


async def claim_deliveries(
    session: AsyncSession, *, now: datetime, limit: int, lease: timedelta
) -> list[DeliveryRow]:
    """Lease due deliveries (FOR UPDATE SKIP LOCKED): no other relay takes them meanwhile.

    A lease, not a held lock, covers the HTTP call, so a crashed relay's rows come back once
    the lease expires (and go out again with the same webhook-id).
    """
    rows = list(
        await session.scalars(
            select(DeliveryRow)
            .where(
                DeliveryRow.status == "pending",
                DeliveryRow.next_attempt_at <= now,
                or_(DeliveryRow.leased_until.is_(None), DeliveryRow.leased_until < now),
            )
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.leased_until = now + lease
    return rows


async def lock_deliveries(session: AsyncSession, ids: Collection[str]) -> dict[str, DeliveryRow]:
    """These deliveries, locked, by id."""
    if not ids:
        return {}
    rows = await session.scalars(
        select(DeliveryRow).where(DeliveryRow.id.in_(list(ids))).with_for_update()
    )
    return {row.id: row for row in rows}


async def get_delivery(
    session: AsyncSession, delivery_id: str, *, lock: bool = False
) -> DeliveryRow | None:
    """One delivery by id."""
    query = select(DeliveryRow).where(DeliveryRow.id == delivery_id)
    if lock:
        query = query.with_for_update()
    result = await session.scalars(query)
    return result.first()


async def list_deliveries(
    session: AsyncSession, *, status: str | None, limit: int, offset: int
) -> tuple[list[DeliveryRow], int]:
    """Deliveries, newest first, and how many match."""
    conditions = [] if status is None else [DeliveryRow.status == status]
    total = await session.scalar(select(func.count()).select_from(DeliveryRow).where(*conditions))
    rows = await session.scalars(
        select(DeliveryRow)
        .where(*conditions)
        .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def delivery_attempts(session: AsyncSession, delivery_id: str) -> list[DeliveryAttemptRow]:
    """Attempts of one delivery, oldest first."""
    rows = await session.scalars(
        select(DeliveryAttemptRow)
        .where(DeliveryAttemptRow.delivery_id == delivery_id)
        .order_by(DeliveryAttemptRow.id)
    )
    return list(rows)


async def active_counts(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(severity, team, n) of active cases."""
    rows = await session.execute(
        select(CaseRow.severity, CaseRow.team, func.count())
        .where(CaseRow.status.in_(ACTIVE))
        .group_by(CaseRow.severity, CaseRow.team)
    )
    return [(s, t, int(n)) for s, t, n in rows]


async def delivery_counts(session: AsyncSession) -> dict[str, int]:
    """Deliveries per status."""
    rows = await session.execute(
        select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
    )
    return {status: int(n) for status, n in rows}

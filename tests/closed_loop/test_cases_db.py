"""Cases against the real PostgreSQL: idempotency, one active case, reopening, SLA escalation
with a controllable clock, quiet hours."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop.cases import apply_feedback, transition
from cxloop_closed_loop.clock import ManualClock
from cxloop_closed_loop.config import RoutingConfig, parse_config
from cxloop_closed_loop.lifecycle import ActionInput
from cxloop_closed_loop.orm import CaseFeedbackRow, CaseRow, CaseTimerRow, DeliveryRow
from cxloop_closed_loop.processor import CaseProcessor
from cxloop_closed_loop.timers import SlaWorker
from cxruntime.consumer import Consumed, Decoded
from cxschema import FeedbackEnriched
from tests.closed_loop.helpers import SECRET, enriched

pytestmark = pytest.mark.integration

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def hook(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "webhook",
        "url": f"http://127.0.0.1:9/{name}",
        "secret": SECRET,
        **extra,
    }


def make_config(**overrides: Any) -> RoutingConfig:
    tree: dict[str, Any] = {
        "receivers": [hook("team-hook"), hook("lead-hook"), hook("owner-hook"), hook("all")],
        "teams": [
            {"name": "triage"},
            {
                "name": "logistics",
                "timezone": "UTC",
                "business_hours": {"start": "09:00", "end": "17:00"},
                "receivers": ["team-hook"],
                "lead": ["lead-hook"],
                "owner": ["owner-hook"],
            },
        ],
        "routes": [{"matchers": ['touchpoint="delivery"'], "team": "logistics"}],
        "triage": {"team": "triage"},
        "global_receivers": ["all"],
        "sla": {
            "high": {"acknowledge": "30m", "resolve": "2h"},
            "normal": {"acknowledge": "1h", "resolve": "4h"},
            "low": {"acknowledge": "2h", "resolve": "8h"},
        },
        "severity": {"rules": [{"severity": "high", "nps_max": 1}]},
        "root_causes": ["delivery_delay"],
        "contact_outcomes": ["reached_resolved"],
    }
    return parse_config(tree | overrides)


async def feed(
    sessions: async_sessionmaker[AsyncSession],
    config: RoutingConfig,
    event: FeedbackEnriched,
    now: datetime,
) -> str:
    async with sessions() as session, session.begin():
        result = await apply_feedback(session, event=event, config=config, now=now)
    return result.outcome


async def count(sessions: async_sessionmaker[AsyncSession], query: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(query) or 0)


async def deliveries(sessions: async_sessionmaker[AsyncSession]) -> list[DeliveryRow]:
    async with sessions() as session:
        return list(await session.scalars(select(DeliveryRow).order_by(DeliveryRow.created_at)))


async def only_case(sessions: async_sessionmaker[AsyncSession]) -> CaseRow:
    async with sessions() as session:
        return (await session.scalars(select(CaseRow))).one()


async def test_redelivered_event_changes_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    event = enriched(customer="crm-1", nps=3)
    assert await feed(db_sessions, config, event, MONDAY_10) == "opened"
    assert await feed(db_sessions, config, event, MONDAY_10) == "duplicate"
    assert await count(db_sessions, select(func.count()).select_from(CaseRow)) == 1
    assert await count(db_sessions, select(func.count()).select_from(CaseFeedbackRow)) == 1
    rows = await deliveries(db_sessions)
    assert sorted(r.receiver for r in rows) == ["all", "team-hook"]
    assert {r.event_type for r in rows} == {"case.opened"}


async def test_one_active_case_per_customer_and_touchpoint_severity_only_rises(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    assert await feed(db_sessions, config, enriched(customer="c", nps=1), MONDAY_10) == "opened"
    later = MONDAY_10 + timedelta(minutes=5)
    assert await feed(db_sessions, config, enriched(customer="c", nps=5), later) == "updated"
    assert await feed(db_sessions, config, enriched(customer="c", nps=9), later) == "ignored"
    other_touchpoint = enriched(customer="c", nps=4, touchpoint="billing")
    assert await feed(db_sessions, config, other_touchpoint, later) == "opened"
    async with db_sessions() as session:
        case = (
            await session.scalars(select(CaseRow).where(CaseRow.touchpoint == "delivery"))
        ).one()
    assert case.feedback_count == 2
    assert case.severity == "high"
    assert case.team == "logistics"
    types = [r.event_type for r in await deliveries(db_sessions)]
    assert types.count("case.opened") == 3  # logistics: team + global; triage: global
    assert types.count("case.updated") == 2


async def test_feedback_within_14_days_of_resolution_reopens(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    await feed(db_sessions, config, enriched(customer="c", nps=3), MONDAY_10)
    case = await only_case(db_sessions)
    async with db_sessions() as session, session.begin():
        await transition(
            session,
            case_id=case.id,
            action="resolve",
            actor="t",
            config=config,
            data=ActionInput(note="sent a voucher", root_cause="delivery_delay"),
            now=MONDAY_10 + timedelta(hours=1),
        )
    ten_days = MONDAY_10 + timedelta(days=10)
    event = enriched(customer="c", nps=2, occurred_at=ten_days)
    assert await feed(db_sessions, config, event, ten_days) == "reopened"
    reopened = await only_case(db_sessions)
    assert (reopened.status, reopened.reopen_count, reopened.root_cause) == ("open", 1, None)
    async with db_sessions() as session, session.begin():
        for action, data in [
            ("resolve", ActionInput(note="again", root_cause="delivery_delay")),
            ("close", ActionInput(contact_outcome="reached_resolved")),
        ]:
            await transition(
                session,
                case_id=case.id,
                action=action,
                actor="t",
                config=config,
                data=data,
                now=ten_days + timedelta(hours=1),
            )
    much_later = ten_days + timedelta(days=15)
    event = enriched(customer="c", nps=2, occurred_at=much_later)
    assert await feed(db_sessions, config, event, much_later) == "opened"
    assert await count(db_sessions, select(func.count()).select_from(CaseRow)) == 2


async def test_sla_escalates_team_then_lead_then_owner_in_business_hours(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    breaches_before = (
        REGISTRY.get_sample_value(
            "cx_closed_loop_sla_breaches_total",
            {"kind": "acknowledge", "severity": "normal", "team": "logistics"},
        )
        or 0.0
    )
    clock = ManualClock(datetime(2026, 11, 27, 16, 30, tzinfo=UTC))  # Friday 16:30
    await feed(db_sessions, config, enriched(customer="c", nps=3), clock.now())
    case = await only_case(db_sessions)
    # 1h business time from Friday 16:30 = Monday 09:30
    assert case.acknowledge_due_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)

    def worker() -> SlaWorker:  # a fresh worker each time: timers live in PostgreSQL
        return SlaWorker(sessions=db_sessions, config=lambda: config, clock=clock, interval_s=1)

    clock.set(datetime(2026, 11, 29, 20, 0, tzinfo=UTC))  # Sunday: nothing due yet
    assert await worker().tick() == 0
    clock.set(datetime(2026, 11, 30, 9, 31, tzinfo=UTC))
    assert await worker().tick() == 1
    case = await only_case(db_sessions)
    assert case.escalation_level == 1
    escalated = [r for r in await deliveries(db_sessions) if r.event_type == "case.escalated"]
    assert sorted(r.receiver for r in escalated) == ["all", "lead-hook", "team-hook"]
    # The case keeps its SLA deadline and records the breach; the lead's rung is a timer.
    assert case.acknowledge_due_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    assert case.acknowledge_breached_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    assert case.resolve_breached_at is None
    [rung] = [e for e in escalated if e.receiver == "lead-hook"]
    assert json.loads(rung.body)["data"]["details"]["next_due_at"] == "2026-11-30T10:31:00+00:00"

    clock.advance(timedelta(hours=1))
    assert await worker().tick() == 1
    case = await only_case(db_sessions)
    assert case.escalation_level == 2
    escalated = [r for r in await deliveries(db_sessions) if r.event_type == "case.escalated"]
    assert "owner-hook" in {r.receiver for r in escalated}

    clock.advance(timedelta(hours=5))  # resolve deadline passed too; top rung stays
    assert await worker().tick() == 1
    case = await only_case(db_sessions)
    assert case.escalation_level == 2
    assert (
        case.resolve_breached_at
        == case.resolve_due_at
        == datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
    )
    assert case.acknowledge_breached_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    breaches = REGISTRY.get_sample_value(
        "cx_closed_loop_sla_breaches_total",
        {"kind": "acknowledge", "severity": "normal", "team": "logistics"},
    )
    assert breaches == breaches_before + 2
    assert (
        REGISTRY.get_sample_value(
            "cx_closed_loop_cases_open", {"severity": "normal", "team": "logistics"}
        )
        == 1.0
    )
    pending = await count(
        db_sessions,
        select(func.count())
        .select_from(CaseTimerRow)
        .where(CaseTimerRow.fired_at.is_(None), CaseTimerRow.cancelled_at.is_(None)),
    )
    assert pending == 0


async def test_acknowledging_stops_the_acknowledge_deadline(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    clock = ManualClock(MONDAY_10)
    await feed(db_sessions, config, enriched(customer="c", nps=3), clock.now())
    case = await only_case(db_sessions)
    async with db_sessions() as session, session.begin():
        await transition(
            session,
            case_id=case.id,
            action="acknowledge",
            actor="t",
            config=config,
            data=ActionInput(),
            now=clock.now(),
        )
    worker = SlaWorker(sessions=db_sessions, config=lambda: config, clock=clock, interval_s=1)
    clock.advance(timedelta(hours=2))
    assert await worker.tick() == 0
    clock.advance(timedelta(hours=3))  # the resolve deadline (4h) still applies
    assert await worker.tick() == 1
    assert (await only_case(db_sessions)).escalation_level == 1


async def test_quiet_hours_delay_but_never_drop(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    quiet = {"start": "20:00", "end": "07:00", "timezone": "UTC"}
    config = make_config(
        receivers=[
            hook("team-hook", quiet_hours=quiet),
            hook("lead-hook"),
            hook("owner-hook"),
            hook("all"),
        ]
    )
    night = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    await feed(db_sessions, config, enriched(customer="c", nps=3), night)
    rows = {r.receiver: r for r in await deliveries(db_sessions)}
    assert rows["team-hook"].next_attempt_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert rows["team-hook"].status == "pending"
    assert rows["all"].next_attempt_at == night
    assert (await only_case(db_sessions)).status == "open"


async def resolve(
    sessions: async_sessionmaker[AsyncSession], config: RoutingConfig, now: datetime
) -> None:
    case = await only_case(sessions)
    async with sessions() as session, session.begin():
        await transition(
            session,
            case_id=case.id,
            action="resolve",
            actor="t",
            config=config,
            data=ActionInput(note="sent a voucher", root_cause="delivery_delay"),
            now=now,
        )


async def test_a_reopened_case_whose_severity_rises_counts_from_the_reopening(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    await feed(db_sessions, config, enriched(customer="c", nps=3, occurred_at=MONDAY_10), MONDAY_10)
    await resolve(db_sessions, config, MONDAY_10 + timedelta(hours=1))
    reopened_at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # Thursday, ten days on
    event = enriched(customer="c", nps=4, occurred_at=reopened_at)
    assert await feed(db_sessions, config, event, reopened_at) == "reopened"
    worse = reopened_at + timedelta(minutes=5)
    event = enriched(customer="c", nps=0, occurred_at=worse)
    assert await feed(db_sessions, config, event, worse) == "updated"
    case = await only_case(db_sessions)
    assert case.severity == "high"
    assert case.sla_started_at == reopened_at
    # high: 30m to acknowledge, 2h to resolve, from the reopening (not from 23 November)
    assert case.acknowledge_due_at == reopened_at + timedelta(minutes=30)
    assert case.resolve_due_at == reopened_at + timedelta(hours=2)
    clock = ManualClock(worse + timedelta(seconds=1))
    worker = SlaWorker(sessions=db_sessions, config=lambda: config, clock=clock, interval_s=1)
    assert await worker.tick() == 0
    assert (await only_case(db_sessions)).escalation_level == 0
    clock.set(reopened_at + timedelta(minutes=31))
    assert await worker.tick() == 1


async def test_a_reopened_case_reopened_by_a_person_counts_from_that_reopening(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    await feed(db_sessions, config, enriched(customer="c", nps=3, occurred_at=MONDAY_10), MONDAY_10)
    await resolve(db_sessions, config, MONDAY_10 + timedelta(hours=1))
    reopened_at = MONDAY_10 + timedelta(days=1)
    case = await only_case(db_sessions)
    async with db_sessions() as session, session.begin():
        await transition(
            session,
            case_id=case.id,
            action="reopen",
            actor="t",
            config=config,
            data=ActionInput(),
            now=reopened_at,
        )
    worse = reopened_at + timedelta(minutes=10)
    event = enriched(customer="c", nps=1, occurred_at=worse)
    assert await feed(db_sessions, config, event, worse) == "updated"
    case = await only_case(db_sessions)
    assert case.acknowledge_due_at == reopened_at + timedelta(minutes=30)


async def test_a_severity_rise_of_a_case_never_reopened_counts_from_its_opening(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    await feed(db_sessions, config, enriched(customer="c", nps=3, occurred_at=MONDAY_10), MONDAY_10)
    later = MONDAY_10 + timedelta(minutes=20)
    assert await feed(db_sessions, config, enriched(customer="c", nps=0, occurred_at=later), later)
    case = await only_case(db_sessions)
    assert (case.severity, case.sla_started_at) == ("high", MONDAY_10)
    assert case.acknowledge_due_at == MONDAY_10 + timedelta(minutes=30)
    assert case.resolve_due_at == MONDAY_10 + timedelta(hours=2)


async def test_feedback_older_than_the_age_limit_opens_and_reopens_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    old = enriched(customer="c", nps=0, occurred_at=MONDAY_10 - timedelta(days=15))
    assert await feed(db_sessions, config, old, MONDAY_10) == "skipped"
    assert await count(db_sessions, select(func.count()).select_from(CaseRow)) == 0
    assert await deliveries(db_sessions) == []
    recent = enriched(customer="c", nps=3, occurred_at=MONDAY_10 - timedelta(days=13))
    assert await feed(db_sessions, config, recent, MONDAY_10) == "opened"
    await resolve(db_sessions, config, MONDAY_10 + timedelta(hours=1))
    # within the reopen window of the resolution, but it happened a year ago: nothing
    year_ago = enriched(customer="c", nps=1, occurred_at=MONDAY_10 - timedelta(days=365))
    assert await feed(db_sessions, config, year_ago, MONDAY_10 + timedelta(hours=2)) == "skipped"
    case = await only_case(db_sessions)
    assert (case.status, case.feedback_count) == ("resolved", 1)
    # the limit is configurable, and null lifts it
    unlimited = make_config(max_feedback_age_days=None)
    old = enriched(customer="d", nps=0, occurred_at=MONDAY_10 - timedelta(days=15))
    assert await feed(db_sessions, unlimited, old, MONDAY_10) == "opened"


async def test_the_reopen_window_counts_to_when_the_feedback_occurred(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = make_config()
    await feed(db_sessions, config, enriched(customer="c", nps=3, occurred_at=MONDAY_10), MONDAY_10)
    resolved_at = MONDAY_10 + timedelta(hours=1)
    await resolve(db_sessions, config, resolved_at)
    # occurred 13 days after the resolution, processed 3 days later (a consumer backlog)
    occurred = resolved_at + timedelta(days=13)
    late = enriched(customer="c", nps=2, occurred_at=occurred)
    assert await feed(db_sessions, config, late, occurred + timedelta(days=3)) == "reopened"
    await resolve(db_sessions, config, occurred + timedelta(days=3, hours=1))
    # occurred 15 days after that resolution, processed at once: a new case
    second = occurred + timedelta(days=3, hours=1) + timedelta(days=15)
    fresh = enriched(customer="c", nps=2, occurred_at=second)
    assert await feed(db_sessions, config, fresh, second) == "opened"


async def test_skipped_feedback_is_counted_by_reason_and_logged_once_a_batch(
    db_sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config()
    processor = CaseProcessor(
        sessions=db_sessions, config=lambda: config, clock=ManualClock(MONDAY_10)
    )
    sample = ("cx_closed_loop_feedback_skipped_total", {"reason": "too_old"})
    before = REGISTRY.get_sample_value(*sample) or 0.0
    month_ago = MONDAY_10 - timedelta(days=30)
    events = [enriched(customer=f"c{i}", nps=1, occurred_at=month_ago) for i in range(3)]
    events.append(enriched(customer="fresh", nps=1, occurred_at=MONDAY_10))
    batch = [
        Decoded(record=Consumed("t", 0, i, None, b"", (), 0), value=event)
        for i, event in enumerate(events)
    ]
    with caplog.at_level(logging.DEBUG, logger="cxloop_closed_loop"):
        await processor.handle(batch, {})
    assert REGISTRY.get_sample_value(*sample) == before + 3
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert line == "left 3 of 4 events alone (too_old: 3)"
    assert await count(db_sessions, select(func.count()).select_from(CaseRow)) == 1

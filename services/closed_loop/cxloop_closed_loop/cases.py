"""What happens to cases: feedback opens, updates or reopens them; people move them through the
lifecycle; deadlines escalate them. Each change writes its history row and its outbox rows in
the caller's transaction, so a change and its notifications commit (or vanish) together."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cxloop_closed_loop import repository
from cxloop_closed_loop.business_time import add_business_time, quiet_until
from cxloop_closed_loop.config import RoutingConfig, Team
from cxloop_closed_loop.detection import Finding, detect, higher, labels_of
from cxloop_closed_loop.lifecycle import (
    ACTIVE,
    EVENT_TYPES,
    ActionInput,
    IllegalTransition,
    next_status,
)
from cxloop_closed_loop.notifications import webhook_body
from cxloop_closed_loop.orm import (
    CaseFeedbackRow,
    CaseHistoryRow,
    CaseRow,
    CaseTimerRow,
    DeliveryRow,
)
from cxloop_closed_loop.routing import route
from cxloop_closed_loop.telemetry import CASES_OPENED, SLA_BREACHES, TIME_TO_ACKNOWLEDGE
from cxschema import FeedbackEnriched, feedback_uid

log = logging.getLogger(__name__)

SYSTEM = "system"
MAX_LEVEL = 2
Outcome = Literal["opened", "updated", "reopened", "ignored", "duplicate", "skipped"]


class CaseNotFound(Exception):
    """No such case (or not visible to the caller's team)."""


@dataclass(frozen=True)
class FeedbackResult:
    """What one feedback event did."""

    outcome: Outcome
    case_id: uuid.UUID | None = None
    deliveries: int = 0
    reason: str | None = None
    """Why a `skipped` event was left alone (`too_old`)."""


_STAGED = "cxloop_closed_loop.staged"
_INSERT_ORDER: tuple[type[Any], ...] = (CaseFeedbackRow, CaseHistoryRow, CaseTimerRow, DeliveryRow)


def _stage(session: AsyncSession, model: type[Any], **values: Any) -> None:
    """Queue a row for `flush_staged`: one multi-row INSERT per table instead of ORM objects,
    which cost most of the CPU of a busy batch."""
    staged: dict[type[Any], list[dict[str, Any]]] = session.info.setdefault(_STAGED, {})
    staged.setdefault(model, []).append(values)


async def flush_staged(session: AsyncSession) -> None:
    """Write the ORM changes (new and changed cases), then the queued rows, in FK order."""
    await session.flush()
    staged: dict[type[Any], list[dict[str, Any]]] = session.info.pop(_STAGED, {})
    for model in _INSERT_ORDER:
        rows = staged.get(model)
        if rows:
            await session.execute(insert(model), rows)


async def _cancel_timers(
    session: AsyncSession, *, case_id: uuid.UUID, kinds: tuple[str, ...], now: datetime
) -> None:
    await flush_staged(session)  # timers queued in this transaction are cancelled too
    await repository.cancel_timers(session, case_id=case_id, kinds=kinds, now=now)


def new_delivery_id() -> str:
    """A fresh webhook-id."""
    return f"msg_{uuid.uuid4().hex}"


def team_of(config: RoutingConfig, name: str) -> Team:
    """The case's team, or triage's when the team left the configuration."""
    try:
        return config.team(name)
    except KeyError:
        return config.team(config.triage.team)


def case_receivers(config: RoutingConfig, case: CaseRow) -> list[str]:
    """Who hears about a case now: its routes' receivers, its team's ladder up to its level."""
    labels = {str(k): str(v) for k, v in (case.labels or {}).items()}
    labels["severity"] = case.severity
    names = route(config, labels).receivers(config)
    team = team_of(config, case.team)
    names += team.receivers
    for level in range(1, case.escalation_level + 1):
        names += team.ladder(level)
    return list(dict.fromkeys(names))


def enqueue(
    session: AsyncSession,
    *,
    config: RoutingConfig,
    case: CaseRow,
    event_type: str,
    change: str,
    now: datetime,
    receivers: Iterable[str],
    feedback: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Write one outbox row per receiver for a case event; returns how many."""
    body = webhook_body(event_type, case, at=now, change=change, feedback=feedback, details=details)
    count = 0
    for name in dict.fromkeys(receivers):
        try:
            receiver = config.receiver(name)
        except KeyError:
            log.warning("receiver %s is not configured; skipping it for %s", name, event_type)
            continue
        not_before = quiet_until(now, receiver.quiet_hours) or now
        _stage(
            session,
            DeliveryRow,
            id=new_delivery_id(),
            case_id=case.id,
            event_type=event_type,
            receiver=name,
            receiver_type=receiver.type,
            body=body,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=not_before,
        )
        count += 1
    return count


def record(
    session: AsyncSession,
    *,
    case: CaseRow,
    actor: str,
    action: str,
    now: datetime,
    from_status: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit-history row."""
    _stage(
        session,
        CaseHistoryRow,
        case_id=case.id,
        at=now,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=case.status,
        details=details or {},
    )


def sla_deadline(config: RoutingConfig, case: CaseRow, *, kind: str, start: datetime) -> datetime:
    """When `kind` (acknowledge or resolve) falls due, in business time of the case's team."""
    team = team_of(config, case.team)
    targets = config.sla[case.severity]  # type: ignore[index]
    allowed = targets.acknowledge if kind == "acknowledge" else targets.resolve
    return add_business_time(start, allowed, team.business_hours, team.zone)


def schedule_sla(
    session: AsyncSession,
    *,
    config: RoutingConfig,
    case: CaseRow,
    start: datetime,
    now: datetime,
    kinds: tuple[str, ...] = ("acknowledge", "resolve"),
) -> None:
    """Set the case's deadlines (business time of its team) and their timers."""
    for kind in kinds:
        due = sla_deadline(config, case, kind=kind, start=start)
        if kind == "acknowledge":
            case.acknowledge_due_at = due
        else:
            case.resolve_due_at = due
        _stage(session, CaseTimerRow, case_id=case.id, kind=kind, due_at=due, created_at=now)


def _feedback_view(event: FeedbackEnriched) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "channel": event.channel,
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "scores": event.scores.model_dump(exclude_none=True),
        "comment": event.comment,
        "language": event.language,
        "touchpoint": event.touchpoint,
        "sentiment": event.sentiment.model_dump(),
        "enriched_at": event.enriched_at.isoformat() if event.enriched_at else None,
    }


def _attach(
    session: AsyncSession,
    *,
    case: CaseRow,
    event: FeedbackEnriched,
    uid: str,
    finding: Finding,
    now: datetime,
) -> None:
    _stage(
        session,
        CaseFeedbackRow,
        feedback_uid=uid,
        case_id=case.id,
        event_id=event.id,
        source=event.source,
        channel=event.channel,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        added_at=now,
        severity=finding.severity,
        reasons=list(finding.reasons),
        event=event.model_dump(mode="json", exclude_none=True),
    )
    case.feedback_count += 1
    case.reasons = list(dict.fromkeys([*(case.reasons or []), *finding.reasons]))
    case.updated_at = now


async def apply_feedback(
    session: AsyncSession,
    *,
    event: FeedbackEnriched,
    config: RoutingConfig,
    now: datetime,
) -> FeedbackResult:
    """Open, update or reopen the case an event calls for (idempotent on its uid)."""
    [result] = await apply_batch(session, events=[event], config=config, now=now)
    return result


async def apply_batch(
    session: AsyncSession,
    *,
    events: Sequence[FeedbackEnriched],
    config: RoutingConfig,
    now: datetime,
) -> list[FeedbackResult]:
    """Apply a batch of events in order with a handful of queries (idempotent on each uid).

    Detection is pure and runs first; only events that call for a case touch the database:
    one query for uids already attached, one for the active cases of the batch's customers,
    one for recently resolved ones, then the writes in one flush. Events that occurred longer
    than `max_feedback_age_days` ago are skipped: they touch no case.
    """
    results: list[FeedbackResult | None] = [None] * len(events)
    wanted: list[tuple[int, FeedbackEnriched, str, Finding]] = []
    for index, event in enumerate(events):
        finding = detect(event, config.detection, config.severity)
        if finding is None:
            results[index] = FeedbackResult("ignored")
        elif too_old(event, max_age_days=config.max_feedback_age_days, now=now):
            log.debug(
                "feedback %s from %s occurred at %s: too old for a case",
                event.id,
                event.source,
                event.occurred_at.isoformat(),
            )
            results[index] = FeedbackResult("skipped", reason="too_old")
        else:
            wanted.append((index, event, feedback_uid(event.source, event.id), finding))
    seen = await repository.feedback_seen(session, [uid for _, _, uid, _ in wanted])
    keys = {(_customer_key(event, uid), event.touchpoint) for _, event, uid, _ in wanted}
    active = await repository.active_cases(session, keys)
    window = timedelta(days=config.reopen_within_days)
    earliest = min((_reopen_basis(event, now) for _, event, _, _ in wanted), default=now)
    reopenable = await repository.reopenable_cases(
        session, keys - active.keys(), resolved_since=earliest - window
    )
    for index, event, uid, finding in wanted:
        if uid in seen:
            results[index] = FeedbackResult("duplicate")
            continue
        seen.add(uid)
        key = (_customer_key(event, uid), event.touchpoint)
        if key in active:
            results[index] = await _update(
                session,
                case=active[key],
                event=event,
                uid=uid,
                finding=finding,
                config=config,
                now=now,
            )
        elif _reopens(reopenable.get(key), event, window=window, now=now):
            case = reopenable.pop(key)
            results[index] = _reopen_with(
                session,
                case=case,
                event=event,
                uid=uid,
                finding=finding,
                config=config,
                now=now,
            )
            active[key] = case
        else:
            case, n = _open(session, event=event, uid=uid, finding=finding, config=config, now=now)
            results[index] = FeedbackResult("opened", case.id, n)
            active[key] = case
    await flush_staged(session)
    return [r if r is not None else FeedbackResult("ignored") for r in results]


def too_old(event: FeedbackEnriched, *, max_age_days: int | None, now: datetime) -> bool:
    """Whether the event occurred longer than `max_age_days` ago (None: no limit)."""
    return max_age_days is not None and now - event.occurred_at > timedelta(days=max_age_days)


def _reopen_basis(event: FeedbackEnriched, now: datetime) -> datetime:
    # The reopen window counts to when the feedback occurred, not to when it is processed, so
    # a consumer backlog or a replay decides nothing differently. Never later than now: a
    # sender's clock running ahead must not stretch the window.
    return min(event.occurred_at, now)


def _reopens(
    case: CaseRow | None, event: FeedbackEnriched, *, window: timedelta, now: datetime
) -> bool:
    """Whether the event reopens `case`: it occurred within `window` of the resolution."""
    if case is None or case.resolved_at is None:
        return False
    return case.resolved_at >= _reopen_basis(event, now) - window


def _customer_key(event: FeedbackEnriched, uid: str) -> str:
    return event.customer.id if event.customer else f"anonymous:{uid}"


async def _update(
    session: AsyncSession,
    *,
    case: CaseRow,
    event: FeedbackEnriched,
    uid: str,
    finding: Finding,
    config: RoutingConfig,
    now: datetime,
) -> FeedbackResult:
    before = case.severity
    _attach(session, case=case, event=event, uid=uid, finding=finding, now=now)
    case.severity = higher(case.severity, finding.severity)
    details: dict[str, Any] = {"feedback_uid": uid, "reasons": list(finding.reasons)}
    if case.severity != before:
        details["severity"] = {"from": before, "to": case.severity}
        await _cancel_timers(session, case_id=case.id, kinds=("acknowledge", "resolve"), now=now)
        kinds = ("acknowledge", "resolve") if case.status == "open" else ("resolve",)
        # From the start of the current SLA period: for a reopened case that is the reopening,
        # and counting from the original opening would put both deadlines in the past.
        start = case.sla_started_at
        schedule_sla(session, config=config, case=case, start=start, now=now, kinds=kinds)
    n = _feedback_changed(
        session,
        case=case,
        config=config,
        event=event,
        change="feedback_added",
        from_status=case.status,
        details=details,
        now=now,
    )
    return FeedbackResult("updated", case.id, n)


def _feedback_changed(
    session: AsyncSession,
    *,
    case: CaseRow,
    config: RoutingConfig,
    event: FeedbackEnriched,
    change: str,
    from_status: str | None,
    details: dict[str, Any],
    now: datetime,
) -> int:
    """Audit a feedback-driven change of an existing case and queue its `case.updated`;
    returns how many notifications were queued."""
    record(
        session,
        case=case,
        actor=SYSTEM,
        action=change,
        now=now,
        from_status=from_status,
        details=details,
    )
    return enqueue(
        session,
        config=config,
        case=case,
        event_type="case.updated",
        change=change,
        now=now,
        receivers=case_receivers(config, case),
        feedback=_feedback_view(event),
        details=details,
    )


def _reopen_with(
    session: AsyncSession,
    *,
    case: CaseRow,
    event: FeedbackEnriched,
    uid: str,
    finding: Finding,
    config: RoutingConfig,
    now: datetime,
) -> FeedbackResult:
    previous = case.status
    _reopen(case, now=now)
    case.severity = higher(case.severity, finding.severity)
    _attach(session, case=case, event=event, uid=uid, finding=finding, now=now)
    schedule_sla(session, config=config, case=case, start=now, now=now)
    details = {"feedback_uid": uid, "reasons": list(finding.reasons)}
    CASES_OPENED.labels(case.severity, case.team).inc()
    n = _feedback_changed(
        session,
        case=case,
        config=config,
        event=event,
        change="reopened",
        from_status=previous,
        details=details,
        now=now,
    )
    return FeedbackResult("reopened", case.id, n)


def _open(
    session: AsyncSession,
    *,
    event: FeedbackEnriched,
    uid: str,
    finding: Finding,
    config: RoutingConfig,
    now: datetime,
) -> tuple[CaseRow, int]:
    labels = labels_of(event, finding.severity)
    decision = route(config, labels)
    case = CaseRow(
        id=uuid.uuid4(),
        customer_key=_customer_key(event, uid),
        customer_id=event.customer.id if event.customer else None,
        touchpoint=event.touchpoint,
        team=decision.team,
        route=decision.path,
        severity=finding.severity,
        status="open",
        escalation_level=0,
        labels={k: v for k, v in labels.items() if k != "severity"},
        reasons=[],
        feedback_count=0,
        reopen_count=0,
        opened_at=now,
        sla_started_at=now,
        updated_at=now,
    )
    session.add(case)
    _attach(session, case=case, event=event, uid=uid, finding=finding, now=now)
    schedule_sla(session, config=config, case=case, start=now, now=now)
    record(
        session,
        case=case,
        actor=SYSTEM,
        action="opened",
        now=now,
        from_status=None,
        details={
            "feedback_uid": uid,
            "route": decision.path,
            "triaged": decision.triaged,
            "reasons": list(finding.reasons),
        },
    )
    CASES_OPENED.labels(case.severity, case.team).inc()
    n = enqueue(
        session,
        config=config,
        case=case,
        event_type="case.opened",
        change="opened",
        now=now,
        receivers=decision.receivers(config),
        feedback=_feedback_view(event),
    )
    return case, n


def _reopen(case: CaseRow, *, now: datetime) -> None:
    case.status = "open"
    case.sla_started_at = now
    case.reopen_count += 1
    case.escalation_level = 0
    # A new SLA period starts unbreached; the `escalated` history keeps the earlier breach.
    case.acknowledge_breached_at = None
    case.resolve_breached_at = None
    case.acknowledged_at = None
    case.contacted_at = None
    case.resolved_at = None
    case.closed_at = None
    case.root_cause = None
    case.resolution_note = None
    case.contact_outcome = None
    case.updated_at = now


async def transition(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    action: str,
    data: ActionInput,
    actor: str,
    config: RoutingConfig,
    now: datetime,
    team: str | None = None,
) -> CaseRow:
    """Apply a person's action to a case; raises CaseNotFound, IllegalTransition, InvalidRequest."""
    case = await repository.get_case(session, case_id, lock=True)
    if case is None or (team is not None and case.team != team):
        raise CaseNotFound(str(case_id))
    previous = case.status
    target = next_status(
        action,
        case.status,
        data,
        root_causes=config.root_causes,
        contact_outcomes=config.contact_outcomes,
    )
    details: dict[str, Any] = {}
    if data.note:
        details["note"] = data.note
    if action == "acknowledge":
        case.acknowledged_at = now
        await _cancel_timers(session, case_id=case.id, kinds=("acknowledge",), now=now)
        TIME_TO_ACKNOWLEDGE.labels(case.severity).observe(
            max(0.0, (now - case.sla_started_at).total_seconds())
        )
    elif action == "contact":
        case.contacted_at = now
        if case.acknowledged_at is None:
            case.acknowledged_at = now
            await _cancel_timers(session, case_id=case.id, kinds=("acknowledge",), now=now)
    elif action == "resolve":
        case.resolved_at = now
        case.root_cause = data.root_cause
        case.resolution_note = data.note
        details["root_cause"] = data.root_cause
        await _cancel_timers(session, case_id=case.id, kinds=("acknowledge", "resolve"), now=now)
    elif action == "close":
        case.closed_at = now
        case.contact_outcome = data.contact_outcome
        details["contact_outcome"] = data.contact_outcome
    elif action == "reopen":
        other = await repository.active_case(
            session, customer_key=case.customer_key, touchpoint=case.touchpoint
        )
        if other is not None:
            raise IllegalTransition(
                f"the customer has an active case {other.id} on {case.touchpoint}; "
                "add to that one instead"
            )
        _reopen(case, now=now)
        schedule_sla(session, config=config, case=case, start=now, now=now)
        CASES_OPENED.labels(case.severity, case.team).inc()
    elif action == "assign":
        details["assignee"] = {"from": case.assignee, "to": data.assignee}
        case.assignee = data.assignee
    if target is not None:
        case.status = target
    case.updated_at = now
    record(
        session,
        case=case,
        actor=actor,
        action=action,
        now=now,
        from_status=previous,
        details=details,
    )
    enqueue(
        session,
        config=config,
        case=case,
        event_type=EVENT_TYPES[action],
        change=action,
        now=now,
        receivers=case_receivers(config, case),
        details=details,
    )
    await flush_staged(session)
    return case


async def fire_due_timers(
    session: AsyncSession, *, config: RoutingConfig, now: datetime, limit: int = 100
) -> int:
    """Fire the SLA timers that are due: breach, escalate one rung, re-arm; returns how many."""
    fired = 0
    for timer in await repository.claim_due_timers(session, now=now, limit=limit):
        case = await repository.get_case(session, timer.case_id, lock=True)
        relevant = case is not None and (
            case.status == "open" if timer.kind == "acknowledge" else case.status in ACTIVE
        )
        if case is None or not relevant:
            timer.cancelled_at = now
            continue
        timer.fired_at = now
        fired += 1
        SLA_BREACHES.labels(timer.kind, case.severity, case.team).inc()
        # The first timer of a period is the SLA deadline itself; later ones are rungs.
        if timer.kind == "acknowledge" and case.acknowledge_breached_at is None:
            case.acknowledge_breached_at = timer.due_at
        elif timer.kind == "resolve" and case.resolve_breached_at is None:
            case.resolve_breached_at = timer.due_at
        previous_level = case.escalation_level
        case.escalation_level = min(MAX_LEVEL, previous_level + 1)
        case.updated_at = now
        team = team_of(config, case.team)
        details: dict[str, Any] = {
            "deadline": timer.kind,
            "due_at": timer.due_at.isoformat(),
            "level": case.escalation_level,
            "rung": ("team", "lead", "owner")[case.escalation_level],
        }
        if case.escalation_level < MAX_LEVEL:
            # The next rung waits the same business time again. Its deadline goes to a timer
            # and the history only: the case keeps its SLA deadline, so it still shows as
            # breached.
            next_due = sla_deadline(config, case, kind=timer.kind, start=now)
            details["next_due_at"] = next_due.isoformat()
            _stage(
                session,
                CaseTimerRow,
                case_id=case.id,
                kind=timer.kind,
                due_at=next_due,
                created_at=now,
            )
        record(
            session,
            case=case,
            actor=SYSTEM,
            action="escalated",
            now=now,
            from_status=case.status,
            details=details,
        )
        receivers = [*case_receivers(config, case), *team.ladder(case.escalation_level)]
        enqueue(
            session,
            config=config,
            case=case,
            event_type="case.escalated",
            change="escalated",
            now=now,
            receivers=receivers,
            details=details,
        )
    await flush_staged(session)
    return fired

"""HTTP API: cases and their lifecycle (scope `cases`), deliveries (scope `admin`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BeforeValidator, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_closed_loop import repository
from cxloop_closed_loop.cases import CaseNotFound, transition
from cxloop_closed_loop.clock import Clock
from cxloop_closed_loop.config import Severity
from cxloop_closed_loop.holder import ConfigHolder
from cxloop_closed_loop.lifecycle import ActionInput, IllegalTransition, InvalidRequest, Status
from cxloop_closed_loop.notifications import case_data
from cxloop_closed_loop.orm import CaseRow, DeliveryRow
from cxloop_closed_loop.relay import ResendConflict, resend
from cxloop_closed_loop.schemas import (
    ActionBody,
    AssignBody,
    AttemptView,
    CaseDetail,
    CaseList,
    CaseView,
    CloseBody,
    DeliveryDetail,
    DeliveryList,
    DeliveryStatus,
    DeliveryView,
    FeedbackView,
    HistoryView,
    NoteBody,
    ResolveBody,
)
from cxruntime.apikeys import ApiKey
from cxruntime.auth import AdminKey, CasesKey
from cxruntime.problems import Problem, unknown_parameter
from cxruntime.problems import invalid_parameter as _invalid
from cxschema.events import NoNul


@dataclass
class ClosedLoopState:
    """What the API needs from the running service (set on `app.state.closed_loop`)."""

    sessions: async_sessionmaker[AsyncSession]
    config: ConfigHolder
    clock: Clock
    wake_relay: Any


def _state(request: Request) -> ClosedLoopState:
    state = request.app.state.closed_loop
    assert isinstance(state, ClosedLoopState)
    return state


StateDep = Annotated[ClosedLoopState, Depends(_state)]

MAX_LIMIT: Final = 500
MAX_OFFSET: Final = 1_000_000_000
"""Deeper than any case list gets; far below the int64 PostgreSQL takes for OFFSET."""
MAX_FILTER_VALUES: Final = 100


def _split_commas(value: Any) -> Any:
    """`status=open,acknowledged` and `status=open&status=acknowledged` alike: every value of
    every occurrence, empty ones left out (so `status=` filters nothing)."""
    if not isinstance(value, list):
        return value
    return [
        part.strip()
        for item in value
        for part in (item.split(",") if isinstance(item, str) else [item])
        if not isinstance(part, str) or part.strip()
    ]


def _several(description: str) -> Any:
    return Query(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description=f"{description}; several values comma-separated or repeated "
        "(a case matches any of them)",
    )


StatusFilter = Annotated[
    list[Status], BeforeValidator(_split_commas), _several("only cases in this status")
]
TeamFilter = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]],
    BeforeValidator(_split_commas),
    _several("only cases owned by this team"),
]
SeverityFilter = Annotated[
    list[Severity], BeforeValidator(_split_commas), _several("only cases of this severity")
]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
CustomerFilter = Annotated[
    list[_Name], BeforeValidator(_split_commas), _several("only cases of this customer id")
]
AssigneeFilter = Annotated[
    list[_Name], BeforeValidator(_split_commas), _several("only cases assigned to this person")
]


def _refuse_unknown(allowed: frozenset[str], request: Request) -> None:
    # FastAPI drops parameters it does not know without a word, so a misspelt filter would
    # answer with every case.
    for name in dict.fromkeys(request.query_params.keys()):
        if name not in allowed:
            raise unknown_parameter(name, allowed, field=f"query.{name[:100]}")


CASE_PARAMETERS: Final = frozenset(
    {"status", "team", "severity", "customer", "assignee", "breached", "sort", "limit", "offset"}
)
DELIVERY_PARAMETERS: Final = frozenset({"status", "limit", "offset"})


async def _case_parameters(request: Request, _key: CasesKey) -> None:
    """Refuse unknown query parameters of the case list (after the key: a caller without
    one learns nothing about the parameters)."""
    _refuse_unknown(CASE_PARAMETERS, request)


async def _delivery_parameters(request: Request, _key: AdminKey) -> None:
    """Refuse unknown query parameters of the delivery list (after the key)."""
    _refuse_unknown(DELIVERY_PARAMETERS, request)


router = APIRouter(prefix="/v1", tags=["cases"])


def _case_view(case: CaseRow) -> CaseView:
    return CaseView.model_validate(case_data(case))


def _case_id(case_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(case_id)
    except ValueError:
        raise Problem(404, "Not found", f"no case {case_id}") from None


def _team_filter(key: ApiKey, teams: list[str], configured: list[str]) -> list[str]:
    if key.team is None:
        unknown = [team for team in dict.fromkeys(teams) if team not in configured]
        if unknown:
            raise _invalid(
                "query.team", f"unknown team(s) {unknown}; the configured teams are {configured}"
            )
        return teams
    if any(team != key.team for team in teams):
        raise Problem(403, "Forbidden", f"the key {key.name!r} may only see team {key.team!r}")
    return [key.team]


@router.get(
    "/cases",
    summary="List cases",
    response_model=CaseList,
    dependencies=[Depends(_case_parameters)],
)
async def list_cases(  # noqa: PLR0917 (FastAPI query parameters)
    key: CasesKey,
    state: StateDep,
    status: StatusFilter,
    team: TeamFilter,
    severity: SeverityFilter,
    customer: CustomerFilter,
    assignee: AssigneeFilter,
    breached: Annotated[
        bool | None,
        Query(description="only cases whose SLA of the current period is (not) breached"),
    ] = None,
    sort: Annotated[
        repository.CaseSort,
        Query(description="opened_at or due (the earliest open deadline); `-` reverses"),
    ] = "-opened_at",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> CaseList:
    """Cases, newest first unless `sort` says otherwise; a team-bound key sees only its team's
    cases.

    Each filter takes several values, comma-separated or repeated (`status=open,acknowledged`
    or `status=open&status=acknowledged`): a case matches when it has any of them. Unknown
    parameters and teams that are not configured answer 422. `sort=due` puts the earliest
    deadline still to meet first, cases without one last.
    """
    configured = [t.name for t in state.config().teams]
    async with state.sessions() as session:
        rows, total = await repository.list_cases(
            session,
            status=status,
            team=_team_filter(key, team, configured),
            severity=severity,
            customer=customer,
            assignee=assignee,
            breached=breached,
            now=state.clock.now(),
            sort=sort,
            limit=limit,
            offset=offset,
        )
    return CaseList(items=[_case_view(r) for r in rows], total=total)


@router.get("/cases/{case_id}", summary="One case with its feedback and history")
async def get_case(case_id: str, key: CasesKey, state: StateDep) -> CaseDetail:
    """A case, its feedback and its audit history."""
    cid = _case_id(case_id)
    async with state.sessions() as session:
        case = await repository.get_case(session, cid)
        if case is None or (key.team is not None and case.team != key.team):
            raise Problem(404, "Not found", f"no case {case_id}")
        feedback = await repository.case_feedback(session, cid)
        history = await repository.case_history(session, cid)
    return CaseDetail(
        **case_data(case),
        feedback=[
            FeedbackView(
                uid=f.feedback_uid,
                id=f.event_id,
                source=f.source,
                channel=f.channel,
                occurred_at=f.occurred_at,
                received_at=f.received_at,
                added_at=f.added_at,
                severity=f.severity,
                reasons=list(f.reasons),
                event=f.event,
            )
            for f in feedback
        ],
        history=[
            HistoryView(
                at=h.at,
                actor=h.actor,
                action=h.action,
                from_status=h.from_status,
                to_status=h.to_status,
                details=h.details,
            )
            for h in history
        ],
    )


async def _act(
    state: ClosedLoopState, key: ApiKey, case_id: str, action: str, data: ActionInput
) -> CaseView:
    cid = _case_id(case_id)
    try:
        async with state.sessions() as session, session.begin():
            case = await transition(
                session,
                case_id=cid,
                action=action,
                data=data,
                actor=f"key:{key.name}",
                config=state.config(),
                now=state.clock.now(),
                team=key.team,
            )
    except CaseNotFound:
        raise Problem(404, "Not found", f"no case {case_id}") from None
    except IllegalTransition as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    except InvalidRequest as exc:
        raise Problem(422, "Invalid request", str(exc)) from None
    state.wake_relay()
    return _case_view(case)


@router.post("/cases/{case_id}/acknowledge", summary="Acknowledge an open case")
async def acknowledge(
    case_id: str, key: CasesKey, state: StateDep, body: ActionBody | None = None
) -> CaseView:
    """open -> acknowledged; stops the acknowledge deadline."""
    note = body.note if body else None
    return await _act(state, key, case_id, "acknowledge", ActionInput(note=note))


@router.post("/cases/{case_id}/contact", summary="Record that the customer was contacted")
async def contact(
    case_id: str, key: CasesKey, state: StateDep, body: ActionBody | None = None
) -> CaseView:
    """open or acknowledged -> contacted."""
    note = body.note if body else None
    return await _act(state, key, case_id, "contact", ActionInput(note=note))


@router.post("/cases/{case_id}/resolve", summary="Resolve with a root cause and a note")
async def resolve(case_id: str, body: ResolveBody, key: CasesKey, state: StateDep) -> CaseView:
    """-> resolved; needs a configured root-cause code and a note."""
    data = ActionInput(note=body.note, root_cause=body.root_cause)
    return await _act(state, key, case_id, "resolve", data)


@router.post("/cases/{case_id}/close", summary="Close with the customer-contact outcome")
async def close(case_id: str, body: CloseBody, key: CasesKey, state: StateDep) -> CaseView:
    """resolved -> closed; needs a configured contact outcome."""
    data = ActionInput(note=body.note, contact_outcome=body.contact_outcome)
    return await _act(state, key, case_id, "close", data)


@router.post("/cases/{case_id}/reopen", summary="Reopen a resolved or closed case")
async def reopen(
    case_id: str, key: CasesKey, state: StateDep, body: ActionBody | None = None
) -> CaseView:
    """resolved or closed -> open, with fresh deadlines."""
    note = body.note if body else None
    return await _act(state, key, case_id, "reopen", ActionInput(note=note))


@router.post("/cases/{case_id}/assign", summary="Assign the case to a person, or unassign it")
async def assign(case_id: str, body: AssignBody, key: CasesKey, state: StateDep) -> CaseView:
    """Set the assignee; `{"assignee": null}` removes it."""
    data = ActionInput(note=body.note, assignee=body.assignee)
    return await _act(state, key, case_id, "assign", data)


@router.post("/cases/{case_id}/notes", summary="Add a note to the history")
async def notes(case_id: str, body: NoteBody, key: CasesKey, state: StateDep) -> CaseView:
    """Append a note."""
    return await _act(state, key, case_id, "notes", ActionInput(note=body.note))


deliveries_router = APIRouter(prefix="/v1", tags=["deliveries"])


def _delivery_id(delivery_id: str) -> str:
    # Ids are `msg_<uuid>`; PostgreSQL refuses U+0000 even in a comparison, and no id has it.
    if "\x00" in delivery_id:
        raise Problem(404, "Not found", "no delivery with that id")
    return delivery_id


def _delivery_view(row: DeliveryRow) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        case_id=str(row.case_id),
        event_type=row.event_type,
        receiver=row.receiver,
        receiver_type=row.receiver_type,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        dead_at=row.dead_at,
        last_status=row.last_status,
        last_error=row.last_error,
    )


@deliveries_router.get(
    "/deliveries",
    summary="List notifications (dead letters: status=dead)",
    dependencies=[Depends(_delivery_parameters)],
)
async def list_deliveries(
    key: AdminKey,
    state: StateDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DeliveryList:
    """Deliveries, newest first."""
    async with state.sessions() as session:
        rows, total = await repository.list_deliveries(
            session, status=status, limit=limit, offset=offset
        )
    return DeliveryList(items=[_delivery_view(r) for r in rows], total=total)


@deliveries_router.get("/deliveries/{delivery_id}", summary="One delivery with its attempts")
async def get_delivery(delivery_id: str, key: AdminKey, state: StateDep) -> DeliveryDetail:
    """A delivery, its body and every attempt."""
    async with state.sessions() as session:
        row = await repository.get_delivery(session, _delivery_id(delivery_id))
        if row is None:
            raise Problem(404, "Not found", f"no delivery {delivery_id}")
        attempts = await repository.delivery_attempts(session, delivery_id)
    return DeliveryDetail(
        **_delivery_view(row).model_dump(),
        body=orjson.loads(row.body),
        attempt_log=[
            AttemptView(
                at=a.at,
                outcome=a.outcome,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in attempts
        ],
    )


@deliveries_router.post(
    "/deliveries/{delivery_id}/resend", summary="Send a dead-lettered notification again"
)
async def resend_delivery(delivery_id: str, key: AdminKey, state: StateDep) -> DeliveryView:
    """Back to the outbox with the same webhook-id; the relay sends it promptly."""
    async with state.sessions() as session, session.begin():
        try:
            row = await resend(
                session, delivery_id=_delivery_id(delivery_id), now=state.clock.now()
            )
        except ResendConflict as exc:
            raise Problem(409, "Conflict", str(exc)) from None
        if row is None:
            raise Problem(404, "Not found", f"no delivery {delivery_id}")
    state.wake_relay()
    return _delivery_view(row)

"""Request and response bodies of the closed-loop API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from cxschema.events import NoNul

# Every string of a request body ends up in PostgreSQL (text, varchar or jsonb), which refuses
# U+0000: NoNul answers 422 naming the field instead of a failing transaction. The lengths are
# those of the columns.
Note = Annotated[str, StringConstraints(max_length=5000), NoNul]
RequiredNote = Annotated[str, StringConstraints(min_length=1, max_length=5000), NoNul]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]
Person = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]


class CaseCustomer(BaseModel):
    """Who the case is about."""

    id: str | None
    segment: str | None
    region: str | None


class CaseView(BaseModel):
    """A case as the API shows it."""

    id: str
    status: str
    severity: str
    team: str
    route: str
    touchpoint: str
    customer: CaseCustomer
    channel: str | None
    language: str | None
    assignee: str | None
    escalation_level: int
    reasons: list[str]
    feedback_count: int
    reopen_count: int
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    contacted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    acknowledge_due_at: datetime | None
    """The SLA deadline of the current period (an escalation does not move it)."""
    resolve_due_at: datetime | None
    acknowledge_breached_at: datetime | None
    """When the acknowledge deadline of the current period passed unmet; null: not breached."""
    resolve_breached_at: datetime | None
    root_cause: str | None
    resolution_note: str | None
    contact_outcome: str | None


class CaseList(BaseModel):
    """One page of cases and how many match in all."""

    items: list[CaseView]
    total: int


class FeedbackView(BaseModel):
    """A feedback event attached to a case."""

    uid: str
    id: str
    source: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    added_at: datetime
    severity: str
    reasons: list[str]
    event: dict[str, Any]


class HistoryView(BaseModel):
    """One change of a case."""

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    details: dict[str, Any]


class CaseDetail(CaseView):
    """A case with its feedback and its history."""

    feedback: list[FeedbackView]
    history: list[HistoryView]


class ActionBody(BaseModel):
    """Optional note for acknowledge, contact, reopen."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class ResolveBody(BaseModel):
    """Resolving needs a root-cause code from the configured list and a note."""

    model_config = ConfigDict(extra="forbid")

    root_cause: Code
    note: RequiredNote


class CloseBody(BaseModel):
    """Closing needs the outcome of contacting the customer."""

    model_config = ConfigDict(extra="forbid")

    contact_outcome: Code
    note: Note | None = None


class AssignBody(BaseModel):
    """Who works on the case; null (given explicitly) unassigns it."""

    model_config = ConfigDict(extra="forbid")

    assignee: Person | None
    note: Note | None = None


class NoteBody(BaseModel):
    """A note for the history."""

    model_config = ConfigDict(extra="forbid")

    note: RequiredNote


DeliveryStatus = Literal["pending", "delivered", "dead"]


class AttemptView(BaseModel):
    """One delivery attempt."""

    at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryView(BaseModel):
    """A notification for one receiver; `id` is its webhook-id."""

    id: str
    case_id: str
    event_type: str
    receiver: str
    receiver_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None
    last_status: int | None
    last_error: str | None


class DeliveryDetail(DeliveryView):
    """A delivery with its attempts and body."""

    body: dict[str, Any]
    attempt_log: list[AttemptView]


class DeliveryList(BaseModel):
    """One page of deliveries."""

    items: list[DeliveryView]
    total: int

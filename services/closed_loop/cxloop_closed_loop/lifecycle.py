"""The case lifecycle: open -> acknowledged -> contacted -> resolved -> closed, and reopen.

Pure: which action is legal from which status, what it requires, and where it leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["open", "acknowledged", "contacted", "resolved", "closed"]
STATUSES: Final[tuple[Status, ...]] = ("open", "acknowledged", "contacted", "resolved", "closed")
ACTIVE: Final[tuple[Status, ...]] = ("open", "acknowledged", "contacted")
Action = Literal["acknowledge", "contact", "resolve", "close", "reopen", "assign", "notes"]

_MOVES: Final[dict[str, tuple[tuple[Status, ...], Status | None]]] = {
    "acknowledge": (("open",), "acknowledged"),
    "contact": (("open", "acknowledged"), "contacted"),
    "resolve": (("open", "acknowledged", "contacted"), "resolved"),
    "close": (("resolved",), "closed"),
    "reopen": (("resolved", "closed"), "open"),
    "assign": (("open", "acknowledged", "contacted", "resolved"), None),
    "notes": (STATUSES, None),
}

EVENT_TYPES: Final[dict[str, str]] = {
    "acknowledge": "case.updated",
    "contact": "case.updated",
    "resolve": "case.resolved",
    "close": "case.closed",
    "reopen": "case.updated",
    "assign": "case.updated",
    "notes": "case.updated",
}


class IllegalTransition(Exception):
    """The action is not allowed from the case's current status (HTTP 409)."""


class InvalidRequest(Exception):
    """The action lacks something it needs, or names an unknown code (HTTP 422)."""


@dataclass(frozen=True)
class ActionInput:
    """What a caller sends with an action."""

    note: str | None = None
    root_cause: str | None = None
    contact_outcome: str | None = None
    assignee: str | None = None


def next_status(
    action: str,
    current: str,
    data: ActionInput,
    *,
    root_causes: list[str],
    contact_outcomes: list[str],
) -> Status | None:
    """The status after `action` (None: unchanged), or an exception saying why it cannot be."""
    if action not in _MOVES:
        raise InvalidRequest(f"unknown action {action!r}")
    allowed, target = _MOVES[action]
    if current not in allowed:
        raise IllegalTransition(
            f"cannot {action} a case that is {current}; allowed from: {', '.join(allowed)}"
        )
    if action == "resolve":
        if not data.root_cause or data.root_cause not in root_causes:
            raise InvalidRequest(f"resolving needs root_cause, one of: {', '.join(root_causes)}")
        if not data.note or not data.note.strip():
            raise InvalidRequest("resolving needs a note saying what was done")
    if action == "close" and (
        not data.contact_outcome or data.contact_outcome not in contact_outcomes
    ):
        raise InvalidRequest(
            f"closing needs contact_outcome, one of: {', '.join(contact_outcomes)}"
        )
    if action == "assign" and data.assignee is not None and not data.assignee.strip():
        raise InvalidRequest("assigning needs an assignee (or null to unassign)")
    if action == "notes" and not (data.note and data.note.strip()):
        raise InvalidRequest("a note needs text")
    return target

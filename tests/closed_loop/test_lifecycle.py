"""The case lifecycle rules."""

from __future__ import annotations

import pytest

from cxloop_closed_loop.lifecycle import (
    ActionInput,
    IllegalTransition,
    InvalidRequest,
    next_status,
)

CODES = {"root_causes": ["delivery_delay", "other"], "contact_outcomes": ["reached_resolved"]}
RESOLVE = ActionInput(note="refunded shipping", root_cause="delivery_delay")
CLOSE = ActionInput(contact_outcome="reached_resolved")


@pytest.mark.parametrize(
    ("action", "current", "data", "target"),
    [
        ("acknowledge", "open", ActionInput(), "acknowledged"),
        ("contact", "acknowledged", ActionInput(), "contacted"),
        ("resolve", "contacted", RESOLVE, "resolved"),
        ("close", "resolved", CLOSE, "closed"),
        ("reopen", "closed", ActionInput(), "open"),
        ("reopen", "resolved", ActionInput(), "open"),
        ("assign", "acknowledged", ActionInput(assignee="maria"), None),
        ("notes", "closed", ActionInput(note="customer wrote back"), None),
    ],
)
def test_legal_moves(action: str, current: str, data: ActionInput, target: str | None) -> None:
    assert next_status(action, current, data, **CODES) == target


@pytest.mark.parametrize(
    ("action", "current"),
    [
        ("acknowledge", "acknowledged"),
        ("acknowledge", "closed"),
        ("close", "open"),
        ("close", "contacted"),
        ("reopen", "open"),
        ("resolve", "closed"),
        ("assign", "closed"),
    ],
)
def test_illegal_moves_conflict(action: str, current: str) -> None:
    data = ActionInput(
        note="n", root_cause="other", contact_outcome="reached_resolved", assignee="a"
    )
    with pytest.raises(IllegalTransition):
        next_status(action, current, data, **CODES)


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("resolve", ActionInput(note="done"), "root_cause"),
        ("resolve", ActionInput(note="done", root_cause="gremlins"), "root_cause"),
        ("resolve", ActionInput(root_cause="other"), "note"),
        ("close", ActionInput(), "contact_outcome"),
        ("close", ActionInput(contact_outcome="shrug"), "contact_outcome"),
        ("assign", ActionInput(assignee="  "), "assignee"),
        ("notes", ActionInput(note="  "), "text"),
    ],
)
def test_missing_requirements_are_invalid(action: str, data: ActionInput, message: str) -> None:
    current = "resolved" if action == "close" else "acknowledged"
    with pytest.raises(InvalidRequest, match=message):
        next_status(action, current, data, **CODES)

"""Case events as receivers see them: the Standard Webhooks body, Slack text, e-mail text."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

from cxloop_closed_loop.orm import CaseRow

UTC_ZONE: Final = ZoneInfo("UTC")

EVENT_TYPES: Final = (
    "case.opened",
    "case.updated",
    "case.escalated",
    "case.resolved",
    "case.closed",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def case_data(case: CaseRow) -> dict[str, Any]:
    """The public view of a case (the API's and the webhooks')."""
    labels = case.labels or {}
    return {
        "id": str(case.id),
        "status": case.status,
        "severity": case.severity,
        "team": case.team,
        "route": case.route,
        "touchpoint": case.touchpoint,
        "customer": {
            "id": case.customer_id,
            "segment": labels.get("segment") or None,
            "region": labels.get("region") or None,
        },
        "channel": labels.get("channel"),
        "language": labels.get("language"),
        "assignee": case.assignee,
        "escalation_level": case.escalation_level,
        "reasons": list(case.reasons or []),
        "feedback_count": case.feedback_count,
        "reopen_count": case.reopen_count,
        "opened_at": _iso(case.opened_at),
        "updated_at": _iso(case.updated_at),
        "acknowledged_at": _iso(case.acknowledged_at),
        "contacted_at": _iso(case.contacted_at),
        "resolved_at": _iso(case.resolved_at),
        "closed_at": _iso(case.closed_at),
        "acknowledge_due_at": _iso(case.acknowledge_due_at),
        "resolve_due_at": _iso(case.resolve_due_at),
        "acknowledge_breached_at": _iso(case.acknowledge_breached_at),
        "resolve_breached_at": _iso(case.resolve_breached_at),
        "root_cause": case.root_cause,
        "resolution_note": case.resolution_note,
        "contact_outcome": case.contact_outcome,
    }


def webhook_body(
    event_type: str,
    case: CaseRow,
    *,
    at: datetime,
    change: str,
    feedback: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    """The JSON body `{"type", "timestamp", "data"}` of a case event."""
    data = case_data(case)
    data["change"] = change
    if feedback is not None:
        data["feedback"] = feedback
    if details:
        data["details"] = details
    body = {"type": event_type, "timestamp": at.isoformat(), "data": data}
    return orjson.dumps(body).decode()


def summary_line(body: dict[str, Any]) -> str:
    """One human line for Slack and e-mail subjects."""
    data = body.get("data", {})
    kind = str(body.get("type", "case.updated")).removeprefix("case.")
    customer = (data.get("customer") or {}).get("id") or "anonymous customer"
    return (
        f"[{data.get('severity', '?')}] case {kind}: {customer} on {data.get('touchpoint', '?')} "
        f"(team {data.get('team', '?')}, status {data.get('status', '?')})"
    )


def local_time(value: str, zone: ZoneInfo) -> str:
    """An ISO timestamp as people read it: in `zone`, with the UTC offset and the zone's name
    (`Mon 2026-11-23 11:00 +01:00 (Europe/Berlin)`); anything unparsable as it is."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    local = when.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%a %Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]} ({zone.key})"


def detail_text(body: dict[str, Any], *, zone: ZoneInfo = UTC_ZONE) -> str:
    """A few lines describing the case event for people; deadlines in `zone` (the team's)."""
    data = body.get("data", {})
    lines = [summary_line(body), f"case id: {data.get('id')}"]
    if data.get("reasons"):
        lines.append("why: " + ", ".join(data["reasons"]))
    feedback = data.get("feedback") or {}
    if feedback.get("comment"):
        lines.append(f"comment: {feedback['comment']}")
    status = data.get("status")
    if status == "open" and data.get("acknowledge_due_at"):
        lines.append(f"acknowledge by: {local_time(data['acknowledge_due_at'], zone)}")
    elif status in ("acknowledged", "contacted") and data.get("resolve_due_at"):
        lines.append(f"resolve by: {local_time(data['resolve_due_at'], zone)}")
    if data.get("escalation_level"):
        lines.append(f"escalation level: {data['escalation_level']}")
    return "\n".join(lines)

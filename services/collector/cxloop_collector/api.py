"""The collector's HTTP endpoints: thin handlers over the gate and the channel parsers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from cxloop_collector import cloudevents_http as ce
from cxloop_collector import native
from cxloop_collector.bodies import read_body
from cxloop_collector.gate import Batch, Gate
from cxloop_collector.intake import (
    MAX_EVENT_BODY_BYTES,
    BodyError,
    Errors,
    Refused,
    accept,
    field_error,
    field_errors,
    key_source,
    malformed_json,
    status_of,
    too_many,
)
from cxloop_collector.publisher import Record
from cxloop_collector.telemetry import count_event
from cxruntime.apikeys import ApiKey
from cxruntime.ops import RequestRoute
from cxruntime.problems import Problem
from cxschema import PLAIN_SUBMISSION

router = APIRouter(prefix="/v1", tags=["ingest"], route_class=RequestRoute)
"""The ingest endpoints read, validate and answer by hand, so FastAPI's per-request parameter
and dependency solving is skipped (`RequestRoute`); their OpenAPI entries are as declared."""

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON; `errors` says where", **_PROBLEM},
    401: {"description": "Missing or unknown API key", **_PROBLEM},
    403: {"description": "Key lacks the scope, channel or origin", **_PROBLEM},
    413: {
        "description": "Too large: the body, an event's JSON (32 KiB as compact UTF-8), a "
        "comment (5,000 characters) or the number of items; `errors` names it",
        **_PROBLEM,
    },
    422: {"description": "Invalid event; `errors` names each failing field", **_PROBLEM},
    429: {"description": "Over the key's rate or the in-flight bound", **_PROBLEM},
    503: {"description": "Kafka did not acknowledge in time; retry", **_PROBLEM},
}


def json_body(schema: str) -> dict[str, Any]:
    """OpenAPI `requestBody` pointing at a component schema (bodies are parsed by hand)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def gate_of(request: Request) -> Gate:
    """The app's gate, built in its lifespan."""
    gate = request.app.state.gate
    assert isinstance(gate, Gate)
    return gate


_TITLES = {400: "Bad request", 413: "Content too large", 422: "Invalid {what}"}


def refusal(errors: Errors, *, what: str = "event") -> Problem:
    """The problem answering `errors`: 400 when the body is not JSON, 413 when something is
    too large, 422 otherwise; `errors` name each failing field."""
    status = status_of(errors)
    detail = {
        400: "The body is not valid JSON.",
        413: f"The {what} is too large; see errors.",
        422: f"The {what} does not match the schema; see errors.",
    }[status]
    return Problem(status, _TITLES[status].format(what=what), detail, errors=errors)


def invalid(error: ValidationError, *, what: str = "event") -> Problem:
    """`refusal` of a validation error."""
    return refusal(field_errors(error), what=what)


def body_problem(error: BodyError, *, what: str = "batch") -> Problem:
    """The problem of a body that is not the expected JSON shape."""
    title = _TITLES[error.status].format(what=what)
    return Problem(error.status, title, str(error), errors=error.errors)


@router.post(
    "/feedback",
    status_code=202,
    summary="Post one native feedback event",
    responses={200: {"description": "Duplicate of an accepted event"}, **INGEST_RESPONSES},
    openapi_extra=json_body("FeedbackSubmission"),
)
async def post_feedback(request: Request) -> Response:
    """Accept one event; 202 only after Kafka acknowledged it."""
    gate = gate_of(request)
    key, decision = await gate.enter(request)
    body = await read_body(request, MAX_EVENT_BODY_BYTES)
    try:
        submission = PLAIN_SUBMISSION.validate_json(body)
    except ValidationError as exc:
        count_event("unknown", "rejected")
        raise invalid(exc) from None
    gate.check_channel(key, submission["channel"])
    try:
        record = accept(submission, source=key_source(key.name), received_at=gate.now())
    except Refused as exc:
        count_event(submission["channel"], "rejected")
        raise refusal(exc.errors) from None
    return await gate.publish_one(record, decision)


@router.post(
    "/feedback/batch",
    summary="Post up to 500 native events (1 MiB)",
    responses=INGEST_RESPONSES,
    openapi_extra=json_body("FeedbackBatch"),
)
async def post_feedback_batch(request: Request) -> Response:
    """Accept a batch; per-item results, one bad item does not reject the others."""
    gate = gate_of(request)
    key, decision = await gate.enter(request)
    body = await read_body(request, native.MAX_BATCH_BYTES)
    items: list[Any] | None = native.validate_batch(body)
    validated = items is not None
    if items is None:
        try:
            items = native.parse_batch(body)
        except BodyError as exc:
            raise body_problem(exc) from None
    batch = admit_items(items, validated=validated, key=key, gate=gate, source=key_source(key.name))
    return await gate.publish_batch(batch, decision)


def admit_items(
    items: list[Any], *, validated: bool, key: ApiKey, gate: Gate, source: str
) -> Batch:
    """Validate each native item (unless `validated` already); records for the valid ones,
    errors for the others."""
    batch = Batch(size=len(items))
    received_at = gate.now()
    for index, item in enumerate(items):
        result = item if validated else native.validate_item(item)
        if isinstance(result, list):
            channel = item.get("channel") if isinstance(item, dict) else None
            batch.reject(index, result, channel if isinstance(channel, str) else "unknown")
            continue
        channel = result["channel"]
        if not key.allows_channel(channel):
            batch.reject(
                index,
                [field_error("channel", f"the key may not post to {channel!r}", "forbidden")],
                channel,
            )
            continue
        try:
            batch.records[index] = accept(result, source=source, received_at=received_at)
        except Refused as exc:
            batch.reject(index, exc.errors, channel)
    return batch


_CE_ENVELOPE_BYTES = 4096
_CE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        ce.STRUCTURED: {"schema": {"$ref": "#/components/schemas/FeedbackCloudEvent"}},
        ce.BATCH: {
            "schema": {
                "type": "array",
                "maxItems": native.MAX_BATCH_EVENTS,
                "items": {"$ref": "#/components/schemas/FeedbackCloudEvent"},
            }
        },
        "application/json": {
            "schema": {"$ref": "#/components/schemas/FeedbackSubmission"},
            "description": "binary mode: the native event, its attributes in ce-* headers",
        },
    },
}
_CE_HEADERS = [
    {
        "name": f"ce-{attribute}",
        "in": "header",
        "required": False,
        "description": f"binary mode: the CloudEvent's `{attribute}` (percent-encoded UTF-8)"
        + (" (required in binary mode)" if required else ""),
        "schema": {"type": "string"},
    }
    for attribute, required in (
        ("specversion", True),
        ("type", True),
        ("source", True),
        ("id", True),
        ("time", False),
    )
]


@router.post(
    "/cloudevents",
    status_code=202,
    summary="Post CloudEvents 1.0 (structured, binary or batched mode)",
    responses={
        200: {"description": "Duplicate, or the per-item results of a batch"},
        415: {"description": "Not a CloudEvents content mode", **_PROBLEM},
        **INGEST_RESPONSES,
    },
    openapi_extra={"requestBody": _CE_BODY, "parameters": _CE_HEADERS},
)
async def post_cloudevents(request: Request) -> Response:
    """`type` com.cxloop.feedback.submitted, `data` the native event; source + id dedupe."""
    gate = gate_of(request)
    key, decision = await gate.enter(request)
    mode = ce.media_type(request.headers.get("content-type"))
    if mode == ce.BATCH:
        body = await read_body(request, native.MAX_BATCH_BYTES)
        items = _ce_batch(body)
        batch = Batch(size=len(items))
        received_at = gate.now()
        for index, item in enumerate(items):
            parsed = ce.from_structured(item, received_at)
            _admit_cloudevent(parsed, index=index, batch=batch, key=key, received_at=received_at)
        return await gate.publish_batch(batch, decision)
    raw_headers = request.headers.raw
    if mode == ce.STRUCTURED:
        body = await read_body(request, MAX_EVENT_BODY_BYTES + _CE_ENVELOPE_BYTES)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise body_problem(malformed_json(exc), what="CloudEvent") from None
        received_at = gate.now()
        parsed = ce.from_structured(document, received_at)
    elif ce.is_binary(raw_headers):
        body = await read_body(request, MAX_EVENT_BODY_BYTES)
        received_at = gate.now()
        parsed = ce.from_binary(raw_headers, body, received_at)
    else:
        raise Problem(
            415,
            "Unsupported media type",
            f"Send {ce.STRUCTURED}, {ce.BATCH}, or a binary-mode event: its attributes in "
            "ce-specversion, ce-type, ce-source and ce-id headers, the native event as the "
            "application/json body.",
        )
    if isinstance(parsed, list):
        count_event("unknown", "rejected")
        raise refusal(parsed, what="CloudEvent")
    gate.check_channel(key, parsed.submission["channel"])
    try:
        record = _accept_cloudevent(parsed, received_at)
    except Refused as exc:
        count_event(parsed.submission["channel"], "rejected")
        raise refusal(_in_data(exc.errors), what="CloudEvent") from None
    return await gate.publish_one(record, decision)


def _accept_cloudevent(parsed: ce.CloudEvent, received_at: datetime) -> Record:
    """`accept` of a CloudEvent's native event under its attributes (id, source, time)."""
    return accept(
        parsed.submission,
        source=parsed.source,
        received_at=received_at,
        event_id=parsed.id,
        occurred_at=parsed.time,
    )


def _in_data(errors: Errors) -> Errors:
    """`accept`'s errors named as parts of a CloudEvent: the native event is its `data` (the
    attributes `id`, `source` and `time` are checked, under their names, when parsing)."""
    return [
        {**error, "field": "data" if error["field"] == "(event)" else f"data.{error['field']}"}
        if error["field"] not in ("id", "source")
        else error
        for error in errors
    ]


def _ce_batch(body: bytes) -> list[Any]:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise body_problem(malformed_json(exc)) from None
    if not isinstance(items, list):
        raise Problem(
            422,
            "Invalid batch",
            "A batch is a JSON array of CloudEvents.",
            errors=[field_error("(body)", "a JSON array is required", "list_type")],
        )
    if len(items) > native.MAX_BATCH_EVENTS:
        raise body_problem(too_many(len(items), native.MAX_BATCH_EVENTS, field="(body)"))
    return items


def _admit_cloudevent(
    parsed: ce.CloudEvent | Errors,
    *,
    index: int,
    batch: Batch,
    key: ApiKey,
    received_at: datetime,
) -> None:
    if isinstance(parsed, list):
        batch.reject(index, parsed)
        return
    channel = parsed.submission["channel"]
    if not key.allows_channel(channel):
        batch.reject(
            index,
            [field_error("data.channel", f"the key may not post to {channel!r}", "forbidden")],
            channel,
        )
        return
    try:
        batch.records[index] = _accept_cloudevent(parsed, received_at)
    except Refused as exc:
        batch.reject(index, _in_data(exc.errors), channel)

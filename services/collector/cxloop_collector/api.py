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
    MAX_EVENT_BYTES,
    accept,
    field_errors,
    is_malformed,
    key_source,
)
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
    400: {"description": "Malformed body", **_PROBLEM},
    401: {"description": "Missing or unknown API key", **_PROBLEM},
    403: {"description": "Key lacks the scope, channel or origin", **_PROBLEM},
    413: {"description": "Body too large", **_PROBLEM},
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


def invalid(error: ValidationError) -> Problem:
    """400 for a body that is not JSON, 422 naming each failing field otherwise."""
    if is_malformed(error):
        return Problem(
            400, "Bad request", "The body is not valid JSON.", errors=field_errors(error)
        )
    return Problem(
        422,
        "Invalid event",
        "The event does not match the schema; see errors.",
        errors=field_errors(error),
    )


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
    body = await read_body(request, MAX_EVENT_BYTES)
    try:
        submission = PLAIN_SUBMISSION.validate_json(body)
    except ValidationError as exc:
        count_event("unknown", "rejected")
        raise invalid(exc) from None
    gate.check_channel(key, submission["channel"])
    record = accept(submission, source=key_source(key.name), received_at=gate.now())
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
        except native.BodyError as exc:
            raise Problem(exc.status, "Invalid batch", str(exc), errors=exc.errors) from None
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
                [{"field": "channel", "message": f"the key may not post to {channel!r}"}],
                channel,
            )
            continue
        record = accept(result, source=source, received_at=received_at)
        errors = native.oversized(record.value)
        if errors:
            batch.reject(index, errors, channel)
            continue
        batch.records[index] = record
    return batch


_CE_ENVELOPE_BYTES = 4096


@router.post(
    "/cloudevents",
    status_code=202,
    summary="Post CloudEvents 1.0 (structured, binary or batched mode)",
    responses={
        200: {"description": "Duplicate, or the per-item results of a batch"},
        415: {"description": "Not a CloudEvents content mode", **_PROBLEM},
        **INGEST_RESPONSES,
    },
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
            parsed = ce.from_structured(item)
            _admit_cloudevent(parsed, index=index, batch=batch, key=key, received_at=received_at)
        return await gate.publish_batch(batch, decision)
    if mode == ce.STRUCTURED:
        body = await read_body(request, MAX_EVENT_BYTES + _CE_ENVELOPE_BYTES)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Problem(400, "Bad request", "The body is not valid JSON.") from None
        parsed = ce.from_structured(document)
    elif "ce-specversion" in request.headers:
        body = await read_body(request, MAX_EVENT_BYTES)
        parsed = ce.from_binary(request.headers, body)
    else:
        raise Problem(
            415,
            "Unsupported media type",
            f"Send {ce.STRUCTURED}, {ce.BATCH}, or a binary-mode event with ce-* headers.",
        )
    if isinstance(parsed, list):
        count_event("unknown", "rejected")
        raise Problem(422, "Invalid CloudEvent", "See errors.", errors=parsed)
    gate.check_channel(key, parsed.submission["channel"])
    record = accept(
        parsed.submission,
        source=parsed.source,
        received_at=gate.now(),
        event_id=parsed.id,
        occurred_at=parsed.time,
    )
    return await gate.publish_one(record, decision)


def _ce_batch(body: bytes) -> list[Any]:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "Bad request", "The body is not valid JSON.") from None
    if not isinstance(items, list):
        raise Problem(
            422,
            "Invalid batch",
            "A batch is a JSON array of CloudEvents.",
            errors=[{"field": "(body)", "message": "a JSON array is required"}],
        )
    if len(items) > native.MAX_BATCH_EVENTS:
        raise Problem(
            422,
            "Invalid batch",
            f"A batch holds at most {native.MAX_BATCH_EVENTS} events.",
            errors=[{"field": "(body)", "message": f"{len(items)} events"}],
        )
    return items


def _admit_cloudevent(
    parsed: ce.CloudEvent | list[dict[str, str]],
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
            index, [{"field": "data.channel", "message": f"the key may not post to {channel!r}"}]
        )
        return
    record = accept(
        parsed.submission,
        source=parsed.source,
        received_at=received_at,
        event_id=parsed.id,
        occurred_at=parsed.time,
    )
    errors = native.oversized(record.value)
    if errors:
        batch.reject(index, errors, channel)
        return
    batch.records[index] = record

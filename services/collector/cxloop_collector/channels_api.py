"""Channel endpoints: inbound e-mail, one-click ratings, contact-centre surveys."""

from __future__ import annotations

from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_collector import contact_centre, email_channel, pages, rating, repository
from cxloop_collector.api import INGEST_RESPONSES, body_problem, gate_of, refusal
from cxloop_collector.bodies import read_body
from cxloop_collector.cloudevents_http import media_type
from cxloop_collector.gate import Batch, Gate
from cxloop_collector.intake import (
    BodyError,
    Refused,
    accept,
    field_error,
    key_source,
    malformed_json,
)
from cxloop_collector.publisher import Outcome, Overloaded
from cxloop_collector.telemetry import count_event
from cxruntime.problems import Problem
from cxschema import PLAIN_SUBMISSION

router = APIRouter(prefix="/v1/channels", tags=["channels"])

MAX_MAIL_BYTES: Final = 4 * 1024 * 1024
RATING_SOURCE: Final = "/cxloop/channels/email/rating"
_HTML_HEADERS: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@router.post(
    "/email",
    status_code=202,
    summary="Post an inbound e-mail (raw message/rfc822 or a provider's JSON)",
    responses={
        200: {"description": "Duplicate (same Message-ID)"},
        415: {"description": "Neither message/rfc822 nor JSON"},
        **INGEST_RESPONSES,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/InboundMail"}},
            },
        }
    },
)
async def post_email(request: Request) -> Response:
    """The reply text (no quotes, no signature) becomes the comment, the sender the customer,
    the subject `context.subject`, the Message-ID the event id."""
    gate = gate_of(request)
    key, decision = await gate.enter(request)
    gate.check_channel(key, "email")
    kind = media_type(request.headers.get("content-type"))
    body = await read_body(request, MAX_MAIL_BYTES)
    received_at = gate.now()
    try:
        if kind == "message/rfc822":
            mail = email_channel.parse_rfc822(body)
        elif kind in ("application/json", ""):
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise body_problem(malformed_json(exc), what="e-mail") from None
            mail = email_channel.parse_provider_json(document)
        else:
            raise Problem(415, "Unsupported media type", "Send message/rfc822 or JSON.")
        result = email_channel.to_submission(mail, received_at=received_at)
    except email_channel.MailError as exc:
        result = [field_error(exc.field, str(exc), "value_error")]
    if isinstance(result, list):
        count_event("email", "rejected")
        raise refusal(result, what="e-mail")
    try:
        record = accept(result, source=key_source(key.name), received_at=received_at)
    except Refused as exc:
        count_event("email", "rejected")
        raise refusal(exc.errors, what="e-mail") from None
    return await gate.publish_one(record, decision)


def _html(content: str, status: int, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers={**_HTML_HEADERS, **(headers or {})})


@router.get(
    "/email/rate",
    summary="One-click rating from a survey e-mail (the signed token authenticates)",
    response_class=HTMLResponse,
    responses={
        400: {"description": "Forged or malformed link"},
        410: {"description": "Expired link"},
        422: {"description": "Score out of the survey's range"},
        503: {"description": "Kafka unavailable; click again later"},
    },
)
async def rate(
    request: Request,
    t: Annotated[str, Query(max_length=2000, description="the signed token")],
    score: Annotated[int, Query(description="0-10 (nps), 1-5 (csat), 1-7 (ces)")],
) -> HTMLResponse:
    """Record the score once and answer with a small thank-you page."""
    signer = request.app.state.rating_signer
    assert isinstance(signer, rating.RatingSigner)
    try:
        claim = signer.verify(t)
        rating.check_score(claim.survey, score)
    except rating.RatingError as exc:
        status = {"expired": 410, "score": 422}.get(exc.reason, 400)
        return _html(pages.link_problem(str(exc)), status)
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    gate = gate_of(request)
    event_id = f"rating-{claim.nonce}"
    async with sessions() as session:
        fresh = await repository.record_vote(
            session,
            nonce=claim.nonce,
            customer=claim.customer,
            survey=claim.survey,
            score=score,
            event_id=event_id,
        )
        if not fresh:
            recorded = await repository.recorded_score(session, nonce=claim.nonce)
            return _html(pages.already_recorded(score if recorded is None else recorded), 200)
        # The vote commits only once Kafka holds the event: a failed click can be repeated.
        if not await _publish_rating(gate, claim, score, event_id):
            await session.rollback()
            return _html(pages.try_later(), 503, {"Retry-After": "60"})
        await session.commit()
    return _html(pages.thank_you(score), 200)


async def _publish_rating(gate: Gate, claim: rating.RatingClaim, score: int, event_id: str) -> bool:
    submission = PLAIN_SUBMISSION.validate_python(
        {
            "id": event_id,
            "channel": "email",
            "customer": {"id": claim.customer},
            "scores": {claim.survey: score},
            "context": {"survey": claim.survey},
        }
    )
    record = accept(submission, source=RATING_SOURCE, received_at=gate.now())
    try:
        (outcome,) = await gate.publisher.publish([record])
    except Overloaded:
        outcome = Outcome.UNAVAILABLE
    count_event("email", outcome.value)
    return outcome is not Outcome.UNAVAILABLE


MAX_CSV_BYTES: Final = 2 * 1024 * 1024


@router.post(
    "/contact-centre",
    summary="Post post-call survey records: JSON (one or a list) or a CSV export",
    responses={415: {"description": "Neither JSON nor CSV"}, **INGEST_RESPONSES},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/ContactCentreRecord"},
                            {
                                "type": "array",
                                "maxItems": contact_centre.MAX_ROWS,
                                "items": {"$ref": "#/components/schemas/ContactCentreRecord"},
                            },
                        ]
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_contact_centre(request: Request) -> Response:
    """Per-row results; the call id is the event id, so a re-uploaded export is deduplicated."""
    gate = gate_of(request)
    key, decision = await gate.enter(request)
    gate.check_channel(key, "contact_centre")
    kind = media_type(request.headers.get("content-type"))
    zone = request.app.state.csv_zone
    body = await read_body(request, MAX_CSV_BYTES)
    received_at = gate.now()
    try:
        if kind in ("text/csv", "application/csv", "text/plain"):
            upload = contact_centre.parse_csv(body, zone, received_at=received_at)
        elif kind in ("application/json", ""):
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise malformed_json(exc) from None
            upload = contact_centre.parse_json(document, zone, received_at=received_at)
        else:
            raise Problem(415, "Unsupported media type", "Send JSON or text/csv.")
    except BodyError as exc:
        count_event("contact_centre", "rejected")
        raise body_problem(exc, what="upload") from None
    batch = Batch(size=len(upload.rows))
    if upload.ignored_columns:
        batch.notes["ignored_columns"] = upload.ignored_columns
    source = key_source(key.name)
    for row in upload.rows:
        if isinstance(row.result, list):
            batch.reject(row.index, row.result, "contact_centre", row=row.line)
            continue
        try:
            batch.records[row.index] = accept(row.result, source=source, received_at=received_at)
        except Refused as exc:
            batch.reject(row.index, exc.errors, "contact_centre", row=row.line)
    return await gate.publish_batch(batch, decision)

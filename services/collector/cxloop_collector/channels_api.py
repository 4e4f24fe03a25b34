"""Channel endpoints: inbound e-mail, one-click ratings, contact-centre surveys."""

from __future__ import annotations

from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cxloop_collector import contact_centre, email_channel, native, pages, rating, repository
from cxloop_collector.api import INGEST_RESPONSES, gate_of, invalid
from cxloop_collector.bodies import read_body
from cxloop_collector.cloudevents_http import media_type
from cxloop_collector.gate import Batch, Gate
from cxloop_collector.intake import accept, key_source
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
    try:
        if kind == "message/rfc822":
            mail = email_channel.parse_rfc822(body)
        elif kind in ("application/json", ""):
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise Problem(400, "Bad request", "The body is not valid JSON.") from None
            mail = email_channel.parse_provider_json(document)
        else:
            raise Problem(415, "Unsupported media type", "Send message/rfc822 or JSON.")
        submission = PLAIN_SUBMISSION.validate_python(email_channel.submission_fields(mail))
    except email_channel.MailError as exc:
        count_event("email", "rejected")
        raise Problem(
            422,
            "Invalid e-mail",
            str(exc),
            errors=[{"field": exc.field, "message": str(exc)}],
        ) from None
    except ValidationError as exc:
        count_event("email", "rejected")
        raise invalid(exc) from None
    record = accept(submission, source=key_source(key.name), received_at=gate.now())
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
                "application/json": {"schema": {"type": "object"}},
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
    try:
        if kind in ("text/csv", "application/csv", "text/plain"):
            rows = contact_centre.parse_csv(body, zone)
        elif kind in ("application/json", ""):
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise Problem(400, "Bad request", "The body is not valid JSON.") from None
            rows = contact_centre.parse_json(document, zone)
        else:
            raise Problem(415, "Unsupported media type", "Send JSON or text/csv.")
    except ValueError as exc:
        raise Problem(413, "Content too large", str(exc)) from None
    batch = Batch(size=len(rows))
    source = key_source(key.name)
    received_at = gate.now()
    for row in rows:
        if isinstance(row.result, list):
            batch.reject(row.index, row.result, "contact_centre", row=row.line)
            continue
        record = accept(row.result, source=source, received_at=received_at)
        errors = native.oversized(record.value)
        if errors:
            batch.reject(row.index, errors, "contact_centre", row=row.line)
            continue
        batch.records[row.index] = record
    return await gate.publish_batch(batch, decision)

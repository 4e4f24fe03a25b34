"""The OpenAPI document: bodies are parsed by hand for speed, so their schemas are added here."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cxschema import CE_SPECVERSION, TYPE_SUBMITTED, FeedbackSubmission

REF = "#/components/schemas/{model}"
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
UNAUTHENTICATED = frozenset({"/v1/channels/email/rate"})


class FeedbackBatch(BaseModel):
    """Up to 500 native events, at most 1 MiB."""

    events: list[FeedbackSubmission] = Field(max_length=500)


class InboundMail(BaseModel):
    """An inbound e-mail as mail providers post it (SendGrid, Mailgun, Postmark style)."""

    sender: str = Field(alias="from", description="`Name <address>` or an address")
    to: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    headers: dict[str, str] | list[list[str]] | None = Field(
        default=None, description="Message-ID and Date are used when present"
    )


class FeedbackCloudEvent(BaseModel):
    """A CloudEvent 1.0 (structured or batched mode) carrying one native feedback event.

    In binary mode the attributes travel as percent-encoded `ce-*` headers instead, and the
    body is `data`. `source` + `id` is the idempotency key."""

    specversion: Literal["1.0"] = Field(description=f"always {CE_SPECVERSION!r}")
    type: Literal["com.cxloop.feedback.submitted"] = Field(description=TYPE_SUBMITTED)
    source: str = Field(min_length=1, max_length=500, description="a URI-reference")
    id: str = Field(min_length=1, max_length=100)
    time: AwareDatetime | None = Field(
        default=None,
        description="`occurred_at` when `data` has none; 1970 to 2099, at most a day ahead",
    )
    datacontenttype: Literal["application/json"] | None = None
    subject: str | None = None
    data: FeedbackSubmission


class ContactCentreRecord(BaseModel):
    """A post-call survey record (the endpoint takes one or a list). Each field may also be
    written under its German or English aliases (see the collector's documentation); other
    fields, and a field given twice with different values, are errors."""

    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(description="the event id: a re-upload is a duplicate")
    queue: str | None = None
    agent_id: str | None = None
    customer_id: str | None = None
    nps: int | str | None = None
    csat: int | str | None = None
    ces: int | str | None = None
    scores: dict[Literal["nps", "csat", "ces"], int] | None = None
    comment: str | None = Field(default=None, description="the transcript snippet")
    occurred_at: str | None = Field(
        default=None, description="ISO 8601, or `23.11.2026 14:05` in the configured zone"
    )
    language: str | None = None
    segment: str | None = None
    region: str | None = None


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF, by_alias=True)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def install_openapi(app: FastAPI, *extra_models: type[BaseModel]) -> None:
    """Generate the document once, with the hand-parsed bodies' schemas as components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = document.setdefault("components", {})
        components.setdefault("schemas", {}).update(
            _schemas(
                FeedbackSubmission,
                FeedbackBatch,
                FeedbackCloudEvent,
                InboundMail,
                ContactCentreRecord,
                *extra_models,
            )
        )
        components["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in document.get("paths", {}).items():
            if path.startswith("/v1/") and path not in UNAUTHENTICATED:
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]

"""The OpenAPI document: bodies are parsed by hand for speed, so their schemas are added here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from cxschema import FeedbackSubmission

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
            _schemas(FeedbackSubmission, FeedbackBatch, InboundMail, *extra_models)
        )
        components["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in document.get("paths", {}).items():
            if path.startswith("/v1/") and path not in UNAUTHENTICATED:
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]

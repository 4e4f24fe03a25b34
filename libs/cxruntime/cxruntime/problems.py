"""RFC 9457 problem details for every error a cxloop HTTP API returns.

An unreachable database is an outage, not a bug: requests that hit one are answered `503` with
`Retry-After` and logged once per `OUTAGE_LOG_INTERVAL_S`, not with a traceback each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any, Final

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from cxruntime.outage import OutageLog

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S: Final = 5
"""`Retry-After` of the 503 answered while the database cannot be reached."""
OUTAGE_LOG_INTERVAL_S: Final = 60.0
"""While requests keep failing on an unreachable database, one log line per this many seconds."""

_UNREACHABLE: Final[tuple[type[BaseException], ...]] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # the pool had no connection to give within its timeout
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    # Raised by asyncpg while connecting (refused, no socket file, DNS), and by timeouts.
    OSError,
)


class Problem(Exception):
    """An error answered as `application/problem+json`.

    `errors` lists failing fields as `{"field": "scores.nps", "message": "..."}`.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        type_: str = "about:blank",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.type = type_
        self.extra = extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The JSON body of the problem."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    """A response carrying `problem`."""
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic/FastAPI validation errors as `{"field", "message", "type"}` entries."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append(
            {
                "field": ".".join(loc) or "(body)",
                # A validator's ValueError reads "Value error, <its message>": the message.
                "message": err.get("msg", "").removeprefix("Value error, "),
                "type": err.get("type", ""),
            }
        )
    return out


def invalid_parameter(field: str, message: str) -> Problem:
    """The 422 for one bad request parameter, named in `errors` as FastAPI names its own."""
    return Problem(
        422,
        "Invalid request",
        message,
        errors=[{"field": field, "message": message, "type": "value_error"}],
    )


def unknown_parameter(name: str, allowed: Collection[str], *, field: str | None = None) -> Problem:
    """The 422 for a query parameter an endpoint does not take (FastAPI would drop it without a
    word, and a misspelt filter would answer for everything); `field` defaults to the name."""
    shown = name[:100]
    return invalid_parameter(
        field or shown, f"unknown query parameter {shown!r}; this endpoint takes {sorted(allowed)}"
    )


def database_unreachable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached (rather than that a query is wrong)."""
    if isinstance(exc, _UNREACHABLE):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def unavailable_problem(detail: str) -> Problem:
    """The 503 answered while a dependency is unreachable."""
    return Problem(503, "Service unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_S)})


class UnreachableLog:
    """Logs requests refused for an unreachable database once per `interval_s` (with how many
    were refused in between); when to log is `outage.OutageLog`'s decision."""

    def __init__(self, *, interval_s: float = OUTAGE_LOG_INTERVAL_S) -> None:
        self._outage = OutageLog(remind_every_s=interval_s)
        self._suppressed = 0

    def report(self, exc: BaseException) -> None:
        """Count `exc`; log it if nothing was logged within the interval."""
        if self._outage.failure(time.monotonic()) is None:
            self._suppressed += 1
            return
        log.error(
            "the database is unreachable (%s: %s); answering 503 (%d more refused since the "
            "last report)",
            type(exc).__name__,
            exc,
            self._suppressed,
        )
        self._suppressed = 0


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of `app` an RFC 9457 problem; an unreachable database answers 503."""
    outages = UnreachableLog()

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problem = Problem(
            422,
            "Invalid request",
            "The request does not match the schema; see errors.",
            errors=field_errors(exc.errors()),
        )
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(
            exc.status_code,
            _TITLES.get(exc.status_code, "Error"),
            str(exc.detail) if exc.detail else None,
            headers=dict(exc.headers or {}),
        )
        return problem_response(problem, request.url.path)

    async def on_database_error(request: Request, exc: Exception) -> Response:
        if not database_unreachable(exc):
            raise exc  # a bug, not an outage: the server error handler logs its traceback
        outages.report(exc)
        problem = unavailable_problem("The database cannot be reached; retry later.")
        return problem_response(problem, request.url.path)

    app.add_exception_handler(Problem, on_problem)
    for unreachable in (*_UNREACHABLE, sa_exc.DBAPIError):
        app.add_exception_handler(unreachable, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    503: "Service unavailable",
}

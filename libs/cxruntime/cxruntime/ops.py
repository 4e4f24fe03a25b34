"""Operations endpoints every service serves: `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from starlette.routing import BaseRoute, request_response
from starlette.types import Scope

ReadinessCheck = Callable[[], Awaitable[bool]]

READY = Gauge(
    "cx_ready",
    "1 while the readiness check of a dependency passes, else 0 (updated on every scrape).",
    ["check"],
)
"""`/metrics` keeps answering while PostgreSQL or Kafka is down, so `up` stays 1: alert on this."""

NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""`FastAPI(telemetry=...)` for every service: cxloop reports through Prometheus, and FastAPI's
built-in OpenTelemetry hooks otherwise look up the global providers on every request."""


def raw_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the header `name` (lower-case) in an HTTP scope's raw headers.

    On a hot path this is cheaper than building `request.headers` for one lookup."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value
    return None


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Serve the routers' routes from `app`'s own route list, in the order given.

    `FastAPI.include_router` keeps each router as a branch that is resolved again on every
    request (about 16 us per request on the collector's ingest path, a tenth of its handler
    time, measured in-process with FastAPI 0.165). The routes of an `APIRouter` already carry
    their full path, tags and responses, so adding them directly serves the same API and the
    same OpenAPI document without that walk. Routers with their own dependencies or
    startup/shutdown handlers are refused: `include_router` would be needed to apply those.

    They go ahead of FastAPI's own documentation routes (`/openapi.json`, `/docs`, ...), which
    Starlette would otherwise try first, one path match each, on every API request: 28,500
    instructions per single-event request to the collector, 6.9 % of its in-process cost
    (`benchmarks.instructions`). No route of cxloop's overlaps those paths.
    """
    routes: list[BaseRoute] = []
    for router in routers:
        if router.dependencies or router.on_startup or router.on_shutdown:
            raise ValueError("add_routes takes plain routers; use include_router for this one")
        routes.extend(router.routes)
    app.router.routes[:0] = routes


class RequestRoute(APIRoute):
    """A route for endpoints that take only the `Request` and return a `Response`: FastAPI's
    `route_class` extension point, for handlers that read and validate their own bodies.

    For every request FastAPI's own handler solves the endpoint's parameters and dependencies,
    opens two exit stacks and prepares response-model serialisation. An endpoint of the form
    `async def endpoint(request: Request) -> Response` uses none of that, and it cost about 40
    of the 114 us per request of a plain FastAPI endpoint measured in-process (FastAPI 0.165).
    This route hands the request straight to the endpoint through Starlette's
    `request_response`, so the app's exception handlers apply as before. Routing, middleware
    and the OpenAPI document (built from the same route attributes) do not change. An endpoint
    with any other parameter, a dependency, a response model or a `max_body_size` is refused when
    the route is built, since this route would silently skip them.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        parameters = list(inspect.signature(endpoint).parameters)
        if (
            parameters != [self.dependant.request_param_name]
            or self.dependant.dependencies  # the route's own dependencies are among them
            or self.response_field is not None
            or self.max_body_size is not None
            or not inspect.iscoroutinefunction(endpoint)
        ):
            raise TypeError(
                f"{path}: a RequestRoute endpoint is `async def f(request: Request) -> Response`"
                " without dependencies, response model or max_body_size (it reads its own body)"
            )
        self.app = request_response(endpoint)


def ops_router(checks: Callable[[], Mapping[str, ReadinessCheck]]) -> APIRouter:
    """Health, readiness and Prometheus endpoints.

    `checks` is called per request (the checks exist only once the lifespan built the clients);
    `/readyz` answers 503 while any check fails, naming which.
    """
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Kafka and the database are reachable")
    async def readyz() -> Response:
        named = dict(checks())
        if not named:
            return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
        results = await asyncio.gather(*(check() for check in named.values()))
        status = dict(zip(named, results, strict=True))
        ready = all(results)
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": status},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        named = dict(checks())
        results = await asyncio.gather(*(check() for check in named.values()))
        for name, ok in zip(named, results, strict=True):
            READY.labels(name).set(1 if ok else 0)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router

"""`add_routes`: the routers' routes served from the app itself, same API and OpenAPI;
`RequestRoute`: request-only endpoints without FastAPI's parameter solving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient

from cxruntime.ops import RequestRoute, add_routes, ops_router


def items_router() -> APIRouter:
    router = APIRouter(prefix="/v1/items", tags=["items"])

    @router.get("/{item_id}", summary="One item")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return router


async def test_routes_are_served_and_documented_as_with_include_router() -> None:
    flat, included = FastAPI(), FastAPI()
    add_routes(flat, ops_router(dict), items_router())
    included.include_router(ops_router(dict))
    included.include_router(items_router())
    # Served from the app's own list: no included-router branch to resolve per request, and
    # ahead of FastAPI's documentation routes, which every request would try first otherwise.
    assert [getattr(route, "path", None) for route in flat.router.routes] == [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/items/{item_id}",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    ]
    assert flat.openapi()["paths"] == included.openapi()["paths"]
    async with AsyncClient(transport=ASGITransport(app=flat), base_url="http://t") as client:
        assert (await client.get("/v1/items/7")).json() == {"id": 7}
        assert (await client.get("/v1/items/x")).status_code == 422
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/openapi.json")).json()["paths"] == included.openapi()["paths"]
        assert (await client.get("/docs")).status_code == 200


def test_routers_with_their_own_dependencies_are_refused() -> None:
    async def dependency() -> None:
        return None

    guarded = APIRouter(dependencies=[Depends(dependency)])
    with pytest.raises(ValueError, match="include_router"):
        add_routes(FastAPI(), guarded)


def echo_router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["echo"], route_class=route_class)

    @router.post(
        "/echo",
        status_code=202,
        summary="Echo the body",
        responses={409: {"description": "Refused"}},
        openapi_extra={"requestBody": {"content": {"application/json": {"schema": {}}}}},
    )
    async def echo(request: Request) -> Response:
        body = await request.body()
        if body == b"refuse":
            raise HTTPException(409, "refused")
        if body == b"teapot":
            raise Teapot()
        return Response(body, status_code=202, media_type="application/json")

    return router


class Teapot(Exception):
    """Raised by the echo endpoint; the app's handler answers 418."""


async def test_request_route_serves_documents_and_handles_errors_like_api_route() -> None:
    apps = {}
    for route_class in (APIRoute, RequestRoute):
        app = FastAPI()
        add_routes(app, echo_router(route_class))

        async def teapot(request: Request, exc: Exception) -> Response:
            return Response("short and stout", status_code=418)

        app.add_exception_handler(Teapot, teapot)
        apps[route_class] = app
    plain, lean = apps[APIRoute], apps[RequestRoute]
    assert lean.openapi()["paths"] == plain.openapi()["paths"]
    assert lean.openapi()["paths"]["/v1/echo"]["post"]["summary"] == "Echo the body"
    for app in (plain, lean):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            answer = await client.post("/v1/echo", content=b'{"a": 1}')
            assert (answer.status_code, answer.json()) == (202, {"a": 1})
            refused = await client.post("/v1/echo", content=b"refuse")
            assert (refused.status_code, refused.json()) == (409, {"detail": "refused"})
            teapot_answer = await client.post("/v1/echo", content=b"teapot")
            assert (teapot_answer.status_code, teapot_answer.text) == (418, "short and stout")
            assert (await client.get("/v1/echo")).status_code == 405


async def _item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


async def _two(request: Request, extra: str) -> Response:
    return Response()


async def _guarded(request: Request, user: Annotated[str, Depends(lambda: "u")]) -> Response:
    return Response()


async def _typed(request: Request) -> dict[str, int]:
    return {}


def _sync(request: Request) -> Response:
    return Response()


async def _echo(request: Request) -> Response:
    return Response()


@pytest.mark.parametrize(
    ("endpoint", "options"),
    [
        pytest.param(_item, {}, id="path-parameter"),
        pytest.param(_two, {}, id="second-parameter"),
        pytest.param(_guarded, {}, id="dependency"),
        pytest.param(_typed, {}, id="response-model"),
        pytest.param(_sync, {}, id="sync"),
        pytest.param(_echo, {"dependencies": [Depends(lambda: None)]}, id="route-dependency"),
        pytest.param(_echo, {"max_body_size": 1024}, id="body-limit"),
    ],
)
def test_request_route_refuses_endpoints_whose_parameters_it_would_skip(
    endpoint: Callable[..., Any], options: dict[str, Any]
) -> None:
    with pytest.raises(TypeError, match="RequestRoute endpoint"):
        RequestRoute("/x/{item_id}", endpoint, methods=["POST"], **options)


async def test_metrics_report_each_readiness_check_as_cx_ready() -> None:
    # /metrics answers while a dependency is down, so Prometheus' `up` stays 1: the readiness
    # of each dependency is exported for alerting.
    healthy = True

    async def database() -> bool:
        return healthy

    async def kafka() -> bool:
        return True

    app = FastAPI()
    add_routes(app, ops_router(lambda: {"database": database, "kafka_ops_test": kafka}))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        assert 'cx_ready{check="database"} 1.0' in (await client.get("/metrics")).text
        healthy = False
        exposition = (await client.get("/metrics")).text
        assert 'cx_ready{check="database"} 0.0' in exposition
        assert 'cx_ready{check="kafka_ops_test"} 1.0' in exposition

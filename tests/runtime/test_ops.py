"""`add_routes`: the routers' routes served from the app itself, same API and OpenAPI."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from httpx import ASGITransport, AsyncClient

from cxruntime.ops import add_routes, ops_router


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
    # Served from the app's own list: no included-router branch to resolve per request.
    assert [getattr(route, "path", None) for route in flat.router.routes][-4:] == [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/items/{item_id}",
    ]
    assert flat.openapi()["paths"] == included.openapi()["paths"]
    async with AsyncClient(transport=ASGITransport(app=flat), base_url="http://t") as client:
        assert (await client.get("/v1/items/7")).json() == {"id": 7}
        assert (await client.get("/v1/items/x")).status_code == 422
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 503


def test_routers_with_their_own_dependencies_are_refused() -> None:
    async def dependency() -> None:
        return None

    guarded = APIRouter(dependencies=[Depends(dependency)])
    with pytest.raises(ValueError, match="include_router"):
        add_routes(FastAPI(), guarded)

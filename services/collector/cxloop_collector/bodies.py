"""Reading request bodies with a size bound, answering 413 beyond it."""

from __future__ import annotations

from fastapi import Request

from cxruntime.ops import raw_header
from cxruntime.problems import Problem


def too_large(limit: int) -> Problem:
    """The 413 problem for a body over `limit` bytes."""
    return Problem(
        413,
        "Content too large",
        f"The request body exceeds {limit} bytes.",
        extra={"limit_bytes": limit},
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed `limit` bytes."""
    declared = raw_header(request.scope, b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Problem(400, "Bad request", "Content-Length is not a number.") from None
        if size > limit:
            raise too_large(limit)
        body = await request.body()
        if len(body) > limit:
            raise too_large(limit)
        return body
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise too_large(limit)
    return bytes(chunks)

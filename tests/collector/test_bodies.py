"""`read_body` on scripted ASGI messages: one message, several, over the limit, disconnects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fastapi import Request
from starlette.requests import ClientDisconnect

from cxloop_collector.bodies import read_body
from cxruntime.problems import Problem


def request_with(messages: Sequence[dict[str, Any]], *, length: int | None = None) -> Request:
    """A request whose `receive` hands out `messages` in order, counting the calls."""
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
    request.state.pending = pending
    return request


def chunk(body: bytes, *, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_one_message_is_the_body() -> None:
    request = request_with([chunk(b'{"a": 1}', more=False)], length=8)
    assert await read_body(request, 100) == b'{"a": 1}'


async def test_chunks_are_joined_without_content_length() -> None:
    parts = [chunk(b"ab", more=True), chunk(b"", more=True), chunk(b"cd", more=False)]
    assert await read_body(request_with(parts), 4) == b"abcd"


@pytest.mark.parametrize(
    ("messages", "length", "unread"),
    [
        # Declared too large: refused before reading anything.
        ([chunk(b"x" * 11, more=False)], 11, 1),
        # Undeclared: refused as soon as the chunks exceed the limit, the rest left unread.
        (
            [chunk(b"x" * 6, more=True), chunk(b"x" * 6, more=True), chunk(b"x", more=False)],
            None,
            1,
        ),
        # A single message over the limit (a Content-Length that understated the body).
        ([chunk(b"x" * 11, more=False)], 5, 0),
    ],
)
async def test_over_the_limit_is_413(
    messages: list[dict[str, Any]], length: int | None, unread: int
) -> None:
    request = request_with(messages, length=length)
    with pytest.raises(Problem) as raised:
        await read_body(request, 10)
    assert raised.value.status == 413
    assert len(request.state.pending) == unread


async def test_unparseable_content_length_is_400() -> None:
    request = request_with([chunk(b"{}", more=False)])
    request.scope["headers"] = [(b"content-length", b"two")]
    with pytest.raises(Problem) as raised:
        await read_body(request, 10)
    assert raised.value.status == 400


@pytest.mark.parametrize(
    "messages", [[], [chunk(b"ab", more=True)]], ids=["before the body", "mid-body"]
)
async def test_a_disconnect_raises_client_disconnect(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(ClientDisconnect):
        await read_body(request_with(messages), 10)

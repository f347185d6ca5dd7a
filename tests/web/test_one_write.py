"""The history API's server sends a one-piece response's head only with its body
(``web/one_write.py``): nothing of it is on the socket before the body exists, a streamed
body still streams, and an app that fails after its head gets a whole 500, never a head
without a body. A real server and real sockets; the apps are raw ASGI, to control the gap."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from web.server import serving

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
TIMEOUT = 10.0
REQUEST = b"GET / HTTP/1.1\r\nHost: one-write.test\r\n\r\n"
HEAD: dict[str, Any] = {"type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")]}  # fmt: skip


class Gap:
    """An app that sends its head, then waits for the test before it sends the body."""

    def __init__(self, *, streamed: bool = False, fail: bool = False) -> None:
        self.head_sent = asyncio.Event()
        self.go_on = asyncio.Event()
        self.streamed = streamed
        self.fail = fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        head = HEAD if not self.streamed else {**HEAD, "headers": HEAD["headers"][:1]}
        await send(head)
        if self.streamed:
            await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        self.head_sent.set()
        await self.go_on.wait()
        if self.fail:
            raise RuntimeError("the app failed after its head")
        body = b"cd" if self.streamed else b"body"
        await send({"type": "http.response.body", "body": body, "more_body": False})


@asynccontextmanager
async def asking(app: Gap) -> AsyncIterator[asyncio.StreamReader]:
    async with serving(app) as server:  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(REQUEST)
        await writer.drain()
        await asyncio.wait_for(app.head_sent.wait(), TIMEOUT)
        try:
            yield reader
        finally:
            app.go_on.set()  # never leave the app (and the server's shutdown) waiting
            writer.close()


async def arrived(reader: asyncio.StreamReader, within: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(65536), within)
    except TimeoutError:
        return b""


async def test_the_head_waits_for_the_body_then_both_arrive() -> None:
    app = Gap()
    async with asking(app) as reader:
        assert await arrived(reader, 0.3) == b""  # the app has sent its head: none of it is out
        app.go_on.set()
        answer = await reader.readuntil(b"body")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"body"


async def test_a_streamed_body_still_streams() -> None:
    app = Gap(streamed=True)
    async with asking(app) as reader:
        first = await asyncio.wait_for(reader.readuntil(b"ab\r\n"), TIMEOUT)
        assert first.startswith(b"HTTP/1.1 200 ")  # head and first chunk before the app goes on
        app.go_on.set()
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), TIMEOUT)
    assert b"cd" in rest


async def test_an_app_failing_after_its_head_answers_a_whole_500() -> None:
    app = Gap(fail=True)
    async with asking(app) as reader:
        app.go_on.set()
        answer = await asyncio.wait_for(reader.readuntil(b"Internal Server Error"), TIMEOUT)
    assert answer.startswith(b"HTTP/1.1 500 ")
    assert b" 200 " not in answer


async def one_piece(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send(HEAD)
        await send({"type": "http.response.body", "body": b"body", "more_body": False})


async def streamed(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({**HEAD, "headers": HEAD["headers"][:1]})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cd", "more_body": False})


def cycles_alive() -> int:
    return sum(isinstance(thing, RequestResponseCycle) for thing in gc.get_objects())


@pytest.mark.parametrize("app", [one_piece, streamed], ids=["one piece", "streamed"])
async def test_an_answered_request_is_freed_without_the_garbage_collector(
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
) -> None:
    """Requests answered one after the other on a keep-alive connection leave no request
    cycle behind them with the collector off: each is freed when the next replaces it (the
    held ``send`` made it a reference cycle, collected only by the collector: a collection
    every 40-odd requests, docs/benchmarks.md)."""
    async with serving(app) as server:  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        gc.collect()
        before = cycles_alive()
        gc.disable()
        try:
            for _ in range(20):
                writer.write(REQUEST)
                end = b"body" if app is one_piece else b"0\r\n\r\n"
                await asyncio.wait_for(reader.readuntil(end), TIMEOUT)
            left = cycles_alive() - before
        finally:
            gc.enable()
            writer.close()
    assert left <= 1  # the last request's, which its connection still holds

from __future__ import annotations

import asyncio
import socket

import pytest
from starlette.applications import Starlette

from web.server import serving


async def test_serving_on_an_address_in_use_raises_instead_of_exiting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            async with serving(Starlette(), "127.0.0.1", port):
                pass


async def test_serving_on_port_zero_tells_the_port_it_got() -> None:
    async with serving(Starlette(), "127.0.0.1", 0) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"


async def test_a_stop_cut_short_still_closes_the_listening_socket() -> None:
    """The block ends and serving stops the server; a cancellation lands before uvicorn sees
    it should exit (it looks every 0.1 s): the port is free all the same, its socket closed
    (no unclosed socket for the garbage collector to warn of later, in another test)."""
    ports: list[int] = []
    stopping = asyncio.Event()

    async def served() -> None:
        async with serving(Starlette(), "127.0.0.1", 0) as server:
            ports.append(server.port)
            stopping.set()  # serving goes on into the stop without a pause

    task = asyncio.create_task(served())
    await asyncio.wait_for(stopping.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with socket.create_server(("127.0.0.1", ports[0])):  # OSError "in use" while it listens
        pass


async def test_a_stop_cut_short_closes_the_connections_it_holds() -> None:
    """A client keeps its connection open (keep-alive) and the stop is cancelled before
    uvicorn's graceful shutdown: the server's end is closed all the same (the client reads
    the end of the stream), not left open for the garbage collector."""
    ports: list[int] = []
    started, opened, stopping = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def served() -> None:
        async with serving(Starlette(), "127.0.0.1", 0) as server:
            ports.append(server.port)
            started.set()
            await opened.wait()
            stopping.set()  # serving goes on into the stop without a pause

    task = asyncio.create_task(served())
    await asyncio.wait_for(started.wait(), 30)
    reader, writer = await asyncio.open_connection("127.0.0.1", ports[0])
    try:
        writer.write(b"GET /none HTTP/1.1\r\nHost: test\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 30)).startswith(b"HTTP/1.1 404")
        opened.set()
        await asyncio.wait_for(stopping.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(reader.read(), 5)  # the rest of the 404, then the end
    finally:
        writer.close()
        await writer.wait_closed()

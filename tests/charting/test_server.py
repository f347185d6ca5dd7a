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

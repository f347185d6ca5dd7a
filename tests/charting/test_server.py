from __future__ import annotations

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

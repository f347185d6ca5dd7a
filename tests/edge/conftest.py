"""A real HAProxy (the edge) in front of a real history API and a real WebSocket gateway."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from charting import ApiSettings, create_app
from charting.server import ApiServer, serving
from edge.config import EdgeSettings, RateLimits, Upstream
from edge.haproxy import Haproxy
from machine import free_port
from storage import PostgresReads
from storage.reads import HistoryReads
from streams.memory import MemoryBus
from ws_gateway import Gateway, GatewaySettings

TIMEOUT = 10.0


def haproxy_or_skip() -> None:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.skip("HAProxy is not installed (apt-get install haproxy; scripts/test does it)")


@dataclass
class Stack:
    """The edge and what stands behind it; ``settings`` is what the edge runs with."""

    edge: Haproxy
    settings: EdgeSettings
    api: ApiServer
    api_port: int
    gateway: Gateway
    bus: MemoryBus
    history: HistoryReads

    @property
    def url(self) -> str:
        return self.edge.url()

    async def reload(self, **changes: object) -> None:
        self.settings = replace(self.settings, **changes)  # type: ignore[arg-type]
        await asyncio.to_thread(self.edge.reload, self.settings)


@contextlib.asynccontextmanager
async def api_server(history: HistoryReads, port: int) -> AsyncIterator[ApiServer]:
    app = create_app(history, ApiSettings())
    async with serving(app, "127.0.0.1", port) as server:
        yield server


@pytest.fixture
async def stack(migrated_database: str, tmp_path: Path) -> AsyncIterator[Stack]:
    haproxy_or_skip()
    api_port = free_port()
    async with (
        PostgresReads.open(migrated_database) as history,
        MemoryBus(partitions=1) as bus,
    ):
        gateway = Gateway(bus, None, GatewaySettings(port=0))
        await asyncio.wait_for(gateway.__aenter__(), TIMEOUT)
        try:
            async with api_server(history, api_port) as api:
                folder = tmp_path / "edge"
                settings = EdgeSettings(
                    host="127.0.0.1",
                    port=free_port(),
                    admin_host="127.0.0.1",
                    admin_port=free_port(),
                    chart=Upstream("api", (f"127.0.0.1:{api_port}",)),
                    history=Upstream("api", (f"127.0.0.1:{api_port}",)),
                    gateway=Upstream("gateway", (f"127.0.0.1:{gateway.port}",), websocket=True),
                    limits=RateLimits(anonymous_per_address=60_000),
                    error_dir=folder,
                )
                edge = Haproxy(folder)
                await asyncio.to_thread(edge.start, settings)
                try:
                    yield Stack(edge, settings, api, api_port, gateway, bus, history)
                finally:
                    await asyncio.to_thread(edge.stop)
        finally:
            await gateway.__aexit__(None, None, None)


async def eventually(check: Callable[[], object], timeout: float = TIMEOUT) -> None:
    """Wait until ``check()`` (sync or async) is truthy; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true within {timeout}s: {last!r}")

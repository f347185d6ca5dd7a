"""A real HAProxy (the edge) in front of a real history API and a real WebSocket gateway."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from auth.signing import SigningKey, generate_key
from charting import ApiSettings, create_app
from edge.config import (
    PRINCIPAL_HEADER,
    EdgeSettings,
    RateLimits,
    TokenPolicy,
    Upstream,
    VerifyKey,
)
from edge.haproxy import Haproxy
from machine import free_port, reserved_port
from storage import PostgresReads
from storage.reads import HistoryReads
from streams.memory import MemoryBus
from web.server import ApiServer, serving
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
            with reserved_port() as port, reserved_port() as admin_port:
                async with api_server(history, api_port) as api:
                    folder = tmp_path / "edge"
                    settings = EdgeSettings(
                        host="127.0.0.1",
                        port=port,
                        admin_host="127.0.0.1",
                        admin_port=admin_port,
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


ISSUER, AUDIENCE = "ganntec-auth", "ganntec"


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"principal": request.headers.get(PRINCIPAL_HEADER)})


async def _alive(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


ECHO = Starlette(routes=[Route("/healthz", _alive), Route("/echo", _echo)])


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "account:7", "iat": now, "nbf": now,
            "exp": now + 300, "rpm": 600}  # fmt: skip
    return {name: value for name, value in (base | changes).items() if value is not None}


def sign(key: SigningKey, payload: dict[str, Any], **headers: Any) -> str:
    private = key.private_pem.reveal().encode()
    return jwt.encode(payload, private, algorithm="ES256", headers={"kid": key.kid} | headers)


@pytest.fixture
async def keyed(stack: Stack, tmp_path: Path) -> AsyncIterator[tuple[Stack, SigningKey]]:
    """The stack with one current key at the edge, and the echo service behind ``/echo``."""
    key = generate_key(int(time.time()))
    pem = tmp_path / f"{key.kid}.pem"
    pem.write_text(key.public_pem)
    async with serving(ECHO) as echo:
        await stack.reload(
            chart=Upstream("echo", (f"127.0.0.1:{echo.port}",)),
            tokens=TokenPolicy(ISSUER, AUDIENCE, (VerifyKey(key.kid, pem),)),
        )
        yield stack, key


async def get(stack: Stack, path: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        return await edge.get(path, headers=headers | {PRINCIPAL_HEADER: "account:1"})

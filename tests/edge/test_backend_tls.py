"""The edge's connections to its backends over mutual TLS, with a real HAProxy: with the CA and
its certificate (``mdp edge --backend-tls-ca --backend-tls-cert``) it reaches a backend that
requires client certificates, health checks included; a backend that requires a certificate
refuses the edge when it presents none (plain) or one of another CA, and the edge answers 503
without any request reaching the app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from edge.config import BackendTls, EdgeSettings, Upstream, render
from edge.haproxy import Haproxy
from edge.keeper import JWKS_PATH
from machine import reserved_port, stop_process
from mdp.cli import build_parser
from mdp.commands.edge import jwks_url, settings_from
from tests.support import tokens
from tests.support.tls import Pki, make_pki
from web.server import serving

from .conftest import TIMEOUT, eventually, haproxy_or_skip
from .test_command import REPO, STARTUP_TIMEOUT, line_starting


class Backend:
    """A TLS service that needs a client certificate of our CA; it counts what reaches it."""

    def __init__(self) -> None:
        self.checks = 0
        self.requests = 0
        self.app = Starlette(routes=[Route("/healthz", self._alive), Route("/hello", self._hello)])

    async def _alive(self, _: Request) -> PlainTextResponse:
        self.checks += 1
        return PlainTextResponse("ok")

    async def _hello(self, _: Request) -> PlainTextResponse:
        self.requests += 1
        return PlainTextResponse("hello over mTLS")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@contextlib.asynccontextmanager
async def edge_before(
    backend: Backend, pki: Pki, tls: BackendTls | None, folder: Path
) -> AsyncIterator[str]:
    haproxy_or_skip()
    with reserved_port() as port, reserved_port() as admin_port:
        async with serving(backend.app, tls=pki.server) as server:
            upstream = Upstream("api", (f"127.0.0.1:{server.port}",), tls=tls)
            settings = EdgeSettings(
                host="127.0.0.1", port=port, admin_host="127.0.0.1", admin_port=admin_port,
                chart=upstream, history=upstream,
                gateway=Upstream("gateway", (f"127.0.0.1:{server.port}",), websocket=True, tls=tls),
                error_dir=folder,
            )  # fmt: skip
            edge = Haproxy(folder)
            await asyncio.to_thread(edge.start, settings)
            try:
                yield edge.url()
            finally:
                await asyncio.to_thread(edge.stop)


async def hello(url: str, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        return await client.get(f"{url}/hello", headers=headers)


async def test_the_edge_reaches_a_tls_backend_with_its_certificate(
    pki: Pki, tmp_path: Path
) -> None:
    backend = Backend()
    tls = BackendTls(pki.ca, pki.pem("client"))
    async with edge_before(backend, pki, tls, tmp_path / "edge") as url:
        await eventually(lambda: backend.checks >= 2)  # health checks pass over mTLS
        answer = await hello(url)
    assert (answer.status_code, answer.text) == (200, "hello over mTLS")
    assert backend.requests == 1


@pytest.mark.parametrize("edge_has", ["no TLS", "another CA's certificate"])
async def test_a_backend_requiring_a_certificate_refuses_an_edge_without_ours(
    pki: Pki, tmp_path: Path, edge_has: str
) -> None:
    backend = Backend()
    foreign = pki.foreign.cert.with_suffix(".pem")  # certificate and key, of another CA
    tls = None if edge_has == "no TLS" else BackendTls(pki.ca, foreign)
    async with edge_before(backend, pki, tls, tmp_path / "edge") as url:

        async def refused() -> bool:
            return (await hello(url)).status_code == 503

        await eventually(refused)
        answer = await hello(url)
    assert answer.json()["status"] == 503
    assert (backend.checks, backend.requests) == (0, 0)


def test_the_command_puts_every_backend_on_tls(pki: Pki, tmp_path: Path) -> None:
    argv = [
        "edge", "--api", "127.0.0.1:8000", "--gateway", "gateway.internal:8001",
        "--auth", "127.0.0.1:8010", "--trading", "0/2=127.0.0.1:8030",
        "--trading", "1/2=127.0.0.1:8031", "--main-api", "127.0.0.1:8020",
        "--backend-tls-ca", str(pki.ca), "--backend-tls-cert", str(pki.pem("client")),
    ]  # fmt: skip
    args = build_parser().parse_args(argv)
    servers = [
        line.split()
        for line in render(settings_from(args, tmp_path, None)).splitlines()
        if line.strip().startswith("server ")
    ]
    assert len(servers) == 6
    for words in servers:
        at = words.index("ssl")
        assert words[at : at + 7] == [
            "ssl", "verify", "required", "ca-file", str(pki.ca), "crt", str(pki.pem("client")),
        ]  # fmt: skip
    gateway = next(words for words in servers if words[1] == "gateway1")
    assert gateway[-2:] == ["verifyhost", "gateway.internal"]  # a name is checked too
    assert jwks_url(args) == f"https://127.0.0.1:8010{JWKS_PATH}"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--backend-tls-ca", "CA"], "--backend-tls-ca and --backend-tls-cert go together"),
        (["--backend-tls-ca", "CA", "--backend-tls-cert", "NONE"], "--backend-tls-cert"),
    ],
)
def test_the_command_refuses_half_the_tls_options(
    pki: Pki, tmp_path: Path, given: list[str], said: str
) -> None:
    files = {"CA": str(pki.ca), "NONE": str(tmp_path / "none.pem")}
    argv = ["edge", "--api", "127.0.0.1:1", "--gateway", "127.0.0.1:2"]
    args = build_parser().parse_args([*argv, *(files.get(word, word) for word in given)])
    with pytest.raises(ValueError, match=said):
        settings_from(args, tmp_path, None)


async def test_the_command_fetches_keys_and_forwards_over_mutual_tls(
    pki: Pki, tmp_path: Path
) -> None:
    """``mdp edge --backend-tls-*`` as a process: the key set comes from an auth service that
    requires the edge's certificate, and a token it signed passes to a TLS backend."""
    haproxy_or_skip()
    backend = Backend()

    async def keys(_: Request) -> Response:
        return Response(tokens.jwks(), media_type="application/json")

    backend.app.router.routes.append(Route(JWKS_PATH, keys))
    async with serving(backend.app, tls=pki.server) as server:
        at = f"127.0.0.1:{server.port}"
        tls = ["--backend-tls-ca", str(pki.ca), "--backend-tls-cert", str(pki.pem("client"))]
        with reserved_port() as metrics:
            options = ["--auth", at, "--metrics-port", str(metrics), *tls]
            async with edge_command_before(at, tmp_path, options) as (_process, url):
                answer = await hello(url, tokens.issue())
    assert (answer.status_code, answer.text) == (200, "hello over mTLS")
    assert backend.requests == 1


@contextlib.asynccontextmanager
async def edge_command_before(
    at: str, tmp_path: Path, options: list[str]
) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    with reserved_port() as port:  # HAProxy binds it beside the test's holder
        async with _edge_command_on(port, at, tmp_path, options) as started:
            yield started


@contextlib.asynccontextmanager
async def _edge_command_on(
    port: int, at: str, tmp_path: Path, options: list[str]
) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    command = [sys.executable, "-m", "mdp.cli", "edge", "--port", str(port), "--api", at,
               "--gateway", at, *options]  # fmt: skip
    environment = os.environ | {"XDG_STATE_HOME": str(tmp_path / "state")}
    process = subprocess.Popen(
        command, cwd=REPO, env=environment, stderr=subprocess.PIPE, text=True
    )
    try:
        said = await line_starting(process, "mdp edge: ", STARTUP_TIMEOUT)
        assert said == f"mdp edge: listening on http://127.0.0.1:{port}"  # keys came first
        yield process, f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()

"""Every HTTP service's server (:func:`web.server.serving`, as ``mdp api``, ``mdp auth
serve``, the main and trading APIs serve) with ``--tls-*``: mutual TLS over a real socket. A
client without a certificate, or with one of another CA, is refused in the handshake and its
request never reaches the app; a client with a certificate of our CA is served."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.tls import Pki, make_pki, serving_command
from web.server import serving

TIMEOUT = 5.0


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def counting_app() -> tuple[Starlette, list[str]]:
    seen: list[str] = []

    async def hello(request: Request) -> PlainTextResponse:
        seen.append(request.url.path)
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/hello", hello)]), seen


async def get(url: str, context: ssl.SSLContext) -> httpx.Response:
    async with httpx.AsyncClient(verify=context, timeout=TIMEOUT) as client:
        return await client.get(url)


async def test_a_client_with_our_certificate_is_served(pki: Pki) -> None:
    app, seen = counting_app()
    async with serving(app, tls=pki.server) as server:
        assert server.url.startswith("https://127.0.0.1:")
        answer = await get(f"{server.url}/hello", pki.client.client_context())
    assert (answer.status_code, answer.text) == (200, "hello")
    assert seen == ["/hello"]


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
async def test_a_client_without_a_valid_certificate_is_refused(pki: Pki, who: str) -> None:
    app, seen = counting_app()
    context = pki.without_certificate() if who == "no certificate" else pki.foreign.client_context()
    async with serving(app, tls=pki.server) as server:
        with pytest.raises(httpx.TransportError):
            await get(f"{server.url}/hello", context)
        assert (await get(f"{server.url}/hello", pki.client.client_context())).status_code == 200
    assert seen == ["/hello"]  # only ours reached the app


async def test_a_client_does_not_take_a_server_of_another_ca(pki: Pki) -> None:
    app, seen = counting_app()
    async with serving(app, tls=pki.foreign) as server:  # a server with another CA's cert
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await get(f"{server.url}/hello", pki.client.client_context())
    assert seen == []


async def test_without_a_ca_the_server_asks_no_client_certificate(pki: Pki) -> None:
    app, _ = counting_app()
    one_way = type(pki.server)(pki.server.cert, pki.server.key)
    async with serving(app, tls=one_way) as server:
        answer = await get(f"{server.url}/hello", pki.without_certificate())
    assert answer.status_code == 200


async def test_mdp_api_as_a_process_serves_https_to_ours_only(
    pki: Pki, migrated_database: str
) -> None:
    """``mdp api --tls-cert --tls-key --tls-ca``: uvicorn in the foreground
    (:func:`web.server.run_until_stopped`, as ``mdp auth serve`` runs too)."""
    argv = ["api", "--database-url", migrated_database]
    async with serving_command(pki, *argv) as port:
        url = f"https://127.0.0.1:{port}/healthz"
        assert (await get(url, pki.client.client_context())).status_code == 200
        with pytest.raises(httpx.TransportError):
            await get(url, pki.without_certificate())
        with pytest.raises(httpx.TransportError):
            await get(url, pki.foreign.client_context())

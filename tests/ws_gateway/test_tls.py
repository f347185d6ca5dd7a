"""The gateway with ``--tls-*``: WSS with mutual TLS on a real socket. A client with a
certificate of our CA opens ``/ws``; one without a certificate, or with another CA's, is
refused in the handshake."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from tests.support.tls import Pki, make_pki, serving_command
from ws_gateway.server import SUBPROTOCOL

from .harness import TIMEOUT, running


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


async def opens(url: str, context: ssl.SSLContext) -> bool:
    async with connect(url, ssl=context, subprotocols=[SUBPROTOCOL], open_timeout=TIMEOUT) as ws:
        return ws.subprotocol == SUBPROTOCOL


async def test_a_client_with_our_certificate_connects_over_wss(pki: Pki) -> None:
    async with running(tls=pki.server) as (_, gateway):
        assert gateway.url.startswith("wss://")
        assert await opens(gateway.url, pki.client.client_context())


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
async def test_a_client_without_a_valid_certificate_is_refused(pki: Pki, who: str) -> None:
    context = pki.without_certificate() if who == "no certificate" else pki.foreign.client_context()
    async with running(tls=pki.server) as (_, gateway):
        # TLS 1.3: the server checks the client's certificate after the client's handshake
        # ends, so the client sees the connection closed before any HTTP answer
        with pytest.raises((InvalidMessage, ssl.SSLError, ConnectionError)):
            await opens(gateway.url, context)
        assert await opens(gateway.url, pki.client.client_context())  # still serving ours


async def test_the_command_serves_wss_to_ours_only(pki: Pki) -> None:
    """``mdp gateway --tls-cert --tls-key --tls-ca`` as a process of its own."""
    async with serving_command(pki, "gateway") as port:
        url = f"wss://127.0.0.1:{port}/ws"
        assert await opens(url, pki.client.client_context())
        with pytest.raises((InvalidMessage, ssl.SSLError, ConnectionError)):
            await opens(url, pki.without_certificate())

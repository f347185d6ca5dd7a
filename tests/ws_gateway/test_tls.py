"""The gateway with ``--tls-*``: WSS with mutual TLS on a real socket. A client with a
certificate of our CA opens ``/ws``; one without a certificate, or with another CA's, is
refused in the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from machine import free_port
from tests.support.tls import Pki, make_pki
from ws_gateway.server import SUBPROTOCOL

from .harness import TIMEOUT, running

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
"""The command imports every command's modules first: seconds on a busy machine."""


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
    port = free_port()
    files = ["--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key)]
    command = [sys.executable, "-m", "mdp.cli", "gateway", "--port", str(port), *files,
               "--tls-ca", str(pki.ca)]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    url = f"wss://127.0.0.1:{port}/ws"
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while True:
                assert process.poll() is None, "mdp gateway ended"
                with contextlib.suppress(OSError):
                    assert await opens(url, pki.client.client_context())
                    break
                await asyncio.sleep(0.2)
        with pytest.raises((InvalidMessage, ssl.SSLError, ConnectionError)):
            await opens(url, pki.without_certificate())
    finally:
        process.terminate()
        process.wait(TIMEOUT)

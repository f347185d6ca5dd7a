"""The main API process with ``tls`` (``mdp main-api --tls-*``): its API over mutual TLS on a
real socket; a client without a certificate of the CA is refused in the handshake."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from access.settings import TokenSettings
from main_api.process import running
from main_api.settings import MainApiSettings
from main_api.webhooks.settings import WebhookSettings
from tests.support import tokens
from tests.support.tls import make_pki


async def test_the_main_api_serves_ours_over_mutual_tls_only(
    migrated_database: str, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    settings = MainApiSettings(
        migrated_database, TokenSettings(keys=tokens.keyset()), port=0, schema="main_api_tls",
        webhooks=replace(WebhookSettings(), worker=False), tls=pki.server,
    )  # fmt: skip
    async with running(settings) as server:
        assert server.url.startswith("https://")
        url = f"{server.url}/healthz"
        async with (
            httpx.AsyncClient(verify=pki.client.client_context()) as ours,
            httpx.AsyncClient(verify=pki.without_certificate()) as bare,
        ):
            assert (await ours.get(url)).status_code == 200
            with pytest.raises(httpx.TransportError):
                await bare.get(url)

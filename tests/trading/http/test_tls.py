"""The trading process with ``tls`` (``mdp trading serve --tls-*``): its API over mutual TLS
on a real socket; a client without a certificate of the CA is refused in the handshake."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from access.settings import TokenSettings
from streams.memory import MemoryBus
from tests.support import tokens
from tests.support.tls import make_pki
from tests.trading.http.test_api import ALICE, trader
from tests.trading.http.test_command import funded
from tests.trading.service.scenario import settings
from trading.process import ProcessSettings, running


async def test_the_trading_api_serves_ours_over_mutual_tls_only(
    fresh_database: str, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    schema = await asyncio.to_thread(funded, fresh_database)
    process = ProcessSettings(
        fresh_database, TokenSettings(keys=tokens.keyset()), port=0, schema=f"{schema}_read",
        paper=settings(), tls=pki.server,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {trader(ALICE)}"}
    async with MemoryBus() as bus, running(process, bus) as server:
        assert server.url.startswith("https://")
        url = f"{server.url}/trading/v1/positions"
        ours = httpx.AsyncClient(verify=pki.client.client_context(), headers=headers)
        bare = httpx.AsyncClient(verify=pki.without_certificate(), headers=headers)
        async with ours, bare:
            assert (await ours.get(url)).status_code == 200
            with pytest.raises(httpx.TransportError):
                await bare.get(url)

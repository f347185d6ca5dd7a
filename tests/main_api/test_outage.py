"""The main API's database stops and starts again: a request in between is a 503 problem
with ``Retry-After`` and our code, the next one after it answers as before, without a
restart."""

from __future__ import annotations

import asyncio

import httpx

from access.settings import TokenSettings
from main_api import create_app
from main_api.settings import MainApiSettings
from main_api.store import MainStore
from tests.main_api.conftest import ALICE, known, token
from tests.storage.stoppable import StoppablePostgres
from tests.support import tokens
from web.server import serving


async def test_a_request_while_the_database_is_down_is_503_then_it_recovers(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    settings = MainApiSettings(url, TokenSettings(keys=tokens.keyset()))
    async with (
        MainStore.open(url, settings.schema) as store,
        serving(create_app(store, settings, known)) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {token(ALICE)}"}
        ) as alice,
    ):
        made = await alice.post("/watchlists", json={"name": "kept"})
        assert made.status_code == 201, made.text
        await asyncio.to_thread(stoppable_postgres.stop)
        for method, path in [("GET", "/watchlists"), ("POST", "/alerts"), ("GET", "/profile")]:
            body = {"instrument": "SYNTH:BTCUSD", "condition": "above", "threshold": "1"}
            answer = await alice.request(method, path, json=body if method == "POST" else None)
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "5"
            assert answer.json()["code"] == "store-unavailable"
        assert (await alice.get(f"{server.url}/readyz")).status_code == 503
        await asyncio.to_thread(stoppable_postgres.start)
        async with asyncio.timeout(30):
            while (await alice.get(f"{server.url}/readyz")).status_code != 200:
                await asyncio.sleep(0.2)
        listed = await alice.get("/watchlists")
        assert listed.status_code == 200, listed.text
        assert [w["name"] for w in listed.json()["watchlists"]] == ["kept"]
        assert (await alice.post("/watchlists", json={"name": "new"})).status_code == 201

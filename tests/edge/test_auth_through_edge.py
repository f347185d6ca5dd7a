"""The auth service behind the edge: an account signs up and logs in through the one public
port, and its access token opens the history API there; a rotated signing key reaches the
edge through the key set, and a token of a revoked session is refused by the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest

from auth.app import create_app
from auth.service import AuthService
from edge.config import TokenPolicy, Upstream
from edge.keeper import JWKS_PATH, fetch_keys
from machine import free_port
from tests.auth.conftest import PASSWORD, SETTINGS
from web.server import ApiServer, serving

from .conftest import TIMEOUT, Stack, eventually
from .test_command import edge_command


@pytest.fixture
async def with_auth(
    stack: Stack, migrated_database: str
) -> AsyncIterator[tuple[Stack, ApiServer, AuthService]]:
    app = create_app(migrated_database, SETTINGS)
    async with app.router.lifespan_context(app), serving(app) as auth:
        address = f"127.0.0.1:{auth.port}"
        keys = await asyncio.to_thread(
            fetch_keys, f"http://{address}{JWKS_PATH}", stack.edge.folder / "keys"
        )
        await stack.reload(
            auth=Upstream("auth", (address,), health_path="/auth/healthz"),
            tokens=TokenPolicy(SETTINGS.issuer, SETTINGS.audience, keys),
        )
        yield stack, auth, app.state.service


async def test_sign_up_log_in_and_read_history_through_the_edge(
    with_auth: tuple[Stack, ApiServer, AuthService],
) -> None:
    stack, _, _ = with_auth
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        account = {"email": "ada@example.org", "password": PASSWORD}
        assert (await edge.post("/auth/v1/accounts", json=account)).status_code == 201
        session = (await edge.post("/auth/v1/login", json=account)).json()
        bearer = {"Authorization": f"Bearer {session['access_token']}"}
        assert (await edge.get("/v1/instruments", headers=bearer)).status_code == 200
        keys = await edge.get("/auth/v1/keys", headers=bearer)
        assert keys.status_code == 200, keys.text
        forged = session["access_token"][:-4] + "AAAA"
        refused = await edge.get("/v1/instruments", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401
        assert refused.json()["type"].endswith("/invalid-token")


async def test_a_rotated_key_reaches_the_edge_through_the_key_set(
    with_auth: tuple[Stack, ApiServer, AuthService],
) -> None:
    stack, auth, service = with_auth
    old = (await service.keyring()).signer(service.now())
    new = await service.rotate_keys()
    assert old is not None
    assert new.kid != old.kid
    keys = await asyncio.to_thread(
        fetch_keys, f"http://127.0.0.1:{auth.port}{JWKS_PATH}", stack.edge.folder / "keys"
    )
    assert new.kid in {key.kid for key in keys}
    await stack.reload(tokens=TokenPolicy(SETTINGS.issuer, SETTINGS.audience, keys))
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as edge:
        account = {"email": "bob@example.org", "password": PASSWORD}
        assert (await edge.post("/auth/v1/accounts", json=account)).status_code == 201
        session = (await edge.post("/auth/v1/login", json=account)).json()
        token = session["access_token"]
        assert jwt.get_unverified_header(token)["kid"] == new.kid
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await edge.get("/v1/instruments", headers=bearer)).status_code == 200


async def test_the_edge_keeps_its_keys_through_an_auth_outage_and_takes_a_rotated_one_after(
    stack: Stack, migrated_database: str, tmp_path: Path
) -> None:
    app = create_app(migrated_database, SETTINGS)
    port = free_port()
    options = ("--auth", f"127.0.0.1:{port}", "--jwks-every", "0.3")
    account = {"email": "eve@example.org", "password": PASSWORD}
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as running:
        service: AuthService = app.state.service
        auth = serving(app, "127.0.0.1", port)
        await auth.__aenter__()
        process, url = await running.enter_async_context(edge_command(stack, tmp_path, *options))
        edge = await running.enter_async_context(httpx.AsyncClient(base_url=url, timeout=TIMEOUT))

        async def bearer() -> dict[str, str]:
            session = (await edge.post("/auth/v1/login", json=account)).json()
            return {"Authorization": f"Bearer {session['access_token']}"}

        assert (await edge.post("/auth/v1/accounts", json=account)).status_code == 201
        before = await bearer()
        assert (await edge.get("/v1/instruments", headers=before)).status_code == 200
        await auth.__aexit__(None, None, None)  # the auth service is away
        await asyncio.sleep(1.5)  # several fetches of the key set fail meanwhile
        assert (await edge.get("/v1/instruments", headers=before)).status_code == 200
        assert process.poll() is None
        new = await service.rotate_keys()  # while away: the edge cannot know the new key yet
        async with serving(app, "127.0.0.1", port):

            async def auth_back() -> bool:  # the edge's health checks take it in again
                return (await edge.get("/auth/healthz")).status_code == 200

            await eventually(auth_back)
            after = await bearer()
            assert jwt.get_unverified_header(after["Authorization"][7:])["kid"] == new.kid

            async def taken_in() -> bool:
                answer: httpx.Response = await edge.get("/v1/instruments", headers=after)
                return answer.status_code == 200

            await eventually(taken_in)
            assert (await edge.get("/v1/instruments", headers=before)).status_code == 200

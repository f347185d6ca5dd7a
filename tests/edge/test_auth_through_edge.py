"""The auth service behind the edge: an account signs up and logs in through the one public
port, and its access token opens the history API there; a rotated signing key reaches the
edge through the key set, and a token of a revoked session is refused by the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from auth.app import create_app
from auth.service import AuthService
from charting.server import ApiServer, serving
from edge.config import TokenPolicy, Upstream
from mdp.commands.edge import JWKS_PATH, fetch_keys
from tests.auth.conftest import PASSWORD, SETTINGS

from .conftest import TIMEOUT, Stack


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

"""The auth app on a real PostgreSQL, through httpx's ASGI transport (the app's lifespan runs
as a server would run it)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from auth.app import create_app
from auth.settings import AuthSettings
from auth.throttle import LoginRates, Rate
from streams.bus import Bus

PASSWORD = "correct horse battery"
GENEROUS = LoginRates(per_account=Rate(100, 0.1), per_address=Rate(100, 0.1))
SETTINGS = AuthSettings(login_rates=GENEROUS, relay_poll_s=0.05)


@contextlib.asynccontextmanager
async def running(
    url: str, settings: AuthSettings = SETTINGS, bus: Bus | None = None, wait: float = 5.0
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on ``url``, inside the app's lifespan; revocations go to ``bus``."""
    opener = None if bus is None else lambda: contextlib.nullcontext(bus)
    app: Starlette = create_app(url, settings, opener, wait=wait)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(migrated_database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(migrated_database) as client:
        yield client


def with_settings(**changes: object) -> AuthSettings:
    return dataclasses.replace(SETTINGS, **changes)  # type: ignore[arg-type]


async def sign_up(client: httpx.AsyncClient, email: str = "ada@example.org") -> None:
    answer = await client.post("/auth/v1/accounts", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text


async def log_in(client: httpx.AsyncClient, email: str = "ada@example.org") -> dict[str, object]:
    answer = await client.post("/auth/v1/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def bearer(session: dict[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


def code_of(answer: httpx.Response) -> str:
    assert answer.headers["content-type"] == "application/problem+json"
    code: str = answer.json()["code"]
    return code

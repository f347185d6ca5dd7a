"""The history API over a migrated test database, and an HTTP client of it (in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from charting import ApiSettings, create_app
from storage import PostgresReads, PostgresStore
from tests.charting.data import T0

DAY = 86_400 * 1_000_000_000
NOW = T0 + 30 * DAY
"""The tests' wall clock: a month after the data, so that closed pages are final."""

MakeClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def store(migrated_database: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore.open(migrated_database) as opened:
        yield opened


@pytest.fixture
async def history(migrated_database: str) -> AsyncIterator[PostgresReads]:
    async with PostgresReads.open(migrated_database) as opened:
        yield opened


@pytest.fixture
async def make_client(history: PostgresReads) -> AsyncIterator[MakeClient]:
    """``make_client(**settings)``: an in-process client of an app with those settings (by
    default the clock at :data:`NOW`, and kept pages checked against the database always)."""
    clients: list[httpx.AsyncClient] = []

    def make(**overrides: object) -> httpx.AsyncClient:
        defaults: dict[str, object] = {"clock": lambda: NOW, "cache_recheck_ns": 0}
        settings = ApiSettings(**(defaults | overrides))  # type: ignore[arg-type]
        app = create_app(history, settings)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://history.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: MakeClient) -> httpx.AsyncClient:
    """A client of an app with the default settings."""
    return make_client()

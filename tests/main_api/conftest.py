"""The main API under test: a store of its own in the test's database, served by the
guarded server, tokens as the auth service issues them, and a fixed set of instruments the
platform has."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from access.settings import TokenSettings
from main_api import create_app
from main_api.settings import MainApiSettings
from main_api.store import MainStore
from tests.support import tokens
from web.server import serving

ALICE, BOB = 1, 2
KNOWN = frozenset({"BINANCE:BTCUSDT", "SYNTH:BTCUSD", "SYNTH:ETHUSD", "KRAKEN:XBTUSDT"})
"""The instruments the platform has in these tests (the demo plan covers SYNTH:* and
BINANCE:BTCUSDT, not KRAKEN:XBTUSDT)."""


async def known(instrument: str) -> bool:
    return instrument in KNOWN


def token(account: int, plan: str = "pro") -> str:
    return tokens.issue(account_id=account, principal=account, plan=plan)


@dataclass
class Api:
    """The running API: its store and a client per token."""

    store: MainStore
    url: str
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, account: int | None, plan: str = "pro") -> httpx.AsyncClient:
        headers = {} if account is None else {"Authorization": f"Bearer {token(account, plan)}"}
        made = httpx.AsyncClient(base_url=f"{self.url}/api/v1", headers=headers)
        self.clients.append(made)
        return made


@pytest.fixture
def schema(fresh_database: str) -> Iterator[tuple[str, str]]:
    """The database URL and a schema of this test's own for the main API (dropped after)."""
    name = f"main_api_{uuid.uuid4().hex[:12]}"
    yield fresh_database, name
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@asynccontextmanager
async def served(settings: MainApiSettings) -> AsyncIterator[Api]:
    """The API with ``settings``, over a store of its own in their database and schema."""
    async with (
        MainStore.open(settings.database_url, settings.schema) as store,
        serving(create_app(store, settings, known)) as server,
    ):
        made = Api(store, server.url)
        yield made
        for client in made.clients:
            await client.aclose()


@pytest.fixture
async def api(schema: tuple[str, str]) -> AsyncIterator[Api]:
    url, name = schema
    async with served(
        MainApiSettings(url, TokenSettings(keys=tokens.keyset()), schema=name)
    ) as made:
        yield made


def problem_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of ``answer``, which must have ``status``."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    return body


def refusal(answer: httpx.Response, status: int) -> tuple[str, str | None]:
    """Our code and the field at fault."""
    body = problem_of(answer, status)
    return body["code"], body.get("parameter")

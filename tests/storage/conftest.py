"""The stores under test: every backend keeps one contract (see test_repository.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import MarketDataStore, MemoryStore, PostgresStore

BACKENDS = ("memory", "postgres")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MarketDataStore]:
    """Each backend in turn, empty; PostgreSQL in a fresh migrated database of its own."""
    if request.param == "memory":
        yield MemoryStore()
        return
    url: str = request.getfixturevalue("migrated_database")
    async with PostgresStore.open(url) as postgres:
        yield postgres


@pytest.fixture
async def postgres_store(migrated_database: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore.open(migrated_database) as store:
        yield store

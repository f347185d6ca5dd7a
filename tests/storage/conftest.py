"""The stores under test: every backend keeps one contract (see test_repository.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import (
    HistoryReads,
    MarketDataStore,
    MemoryReads,
    MemoryStore,
    PostgresReads,
    PostgresStore,
    StorageMode,
    migrate,
)

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


READ_BACKENDS = ("memory", "postgres", "postgres-plain")


@pytest.fixture(params=READ_BACKENDS)
async def backend(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[MarketDataStore, HistoryReads]]:
    """Each backend in turn, empty: its store (to write with) and its history reads.
    ``postgres``: a fresh database of its own migrated in the mode the server allows
    (TimescaleDB where the extension loads, else plain); ``postgres-plain``: forced plain."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory, MemoryReads(memory)
        return
    if request.param == "postgres-plain":
        url: str = request.getfixturevalue("fresh_database")
        migrate(url, StorageMode.PLAIN)
    else:
        url = request.getfixturevalue("migrated_database")
    async with PostgresStore.open(url) as postgres, PostgresReads.open(url) as reads:
        yield postgres, reads

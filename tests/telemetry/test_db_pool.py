"""``mdp_db_pool_connections``: a psycopg_pool pool's connections in use and idle, read when
Prometheus scrapes, while the store that owns the pool is open."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from auth.store import AuthStore
from main_api.store import MainStore
from storage import PostgresReads, PostgresStore
from telemetry.metrics import REGISTRY
from telemetry.pools import watch_pool
from tests.telemetry.values import value
from trading.readmodels.queries import TradingQueries
from trading.readmodels.snapshots import AccountSnapshots

CONNECTIONS = "mdp_db_pool_connections"


async def test_a_pool_reports_connections_in_use_and_idle(migrated_database: str) -> None:
    async with AsyncConnectionPool(
        migrated_database, min_size=2, max_size=2, open=False, name="probe"
    ) as pool:
        await pool.wait()
        unwatch = watch_pool(pool)
        try:
            assert value(CONNECTIONS, pool="probe", state="idle") == 2
            assert value(CONNECTIONS, pool="probe", state="used") == 0
            async with pool.connection():
                assert value(CONNECTIONS, pool="probe", state="used") == 1
                assert value(CONNECTIONS, pool="probe", state="idle") == 1
            assert value(CONNECTIONS, pool="probe", state="waiting") == 0
        finally:
            unwatch()
    assert value(CONNECTIONS, pool="probe", state="idle") == 0, "forgotten once closed"


async def test_the_store_reports_its_pool_while_open(migrated_database: str) -> None:
    async with PostgresStore.open(migrated_database, min_size=1, max_size=1):
        assert value(CONNECTIONS, pool="storage", state="idle") >= 1
    assert value(CONNECTIONS, pool="storage", state="idle") == 0


OPENERS: dict[str, Callable[[str], contextlib.AbstractAsyncContextManager[Any]]] = {
    "auth": AuthStore.open,
    "main-api": MainStore.open,
    "trading-queries": TradingQueries.open,
    "trading-snapshots": AccountSnapshots.open,
    "history": PostgresReads.open,
    "history-pages": PostgresReads.open,
}


def reported(pool: str) -> float | None:
    """Requests waiting for a connection of ``pool``, or None when the pool is not reported."""
    return REGISTRY.get_sample_value(CONNECTIONS, {"pool": pool, "state": "waiting"})


@pytest.mark.parametrize("pool", sorted(OPENERS))
async def test_every_service_store_reports_its_pool_while_open(
    migrated_database: str, pool: str
) -> None:
    assert reported(pool) is None
    async with OPENERS[pool](migrated_database):
        assert reported(pool) == 0
        if pool != "trading-snapshots":  # opened without waiting for its first connection
            connections = value(CONNECTIONS, pool=pool, state="idle")
            assert connections + value(CONNECTIONS, pool=pool, state="used") >= 1
    assert reported(pool) is None, "forgotten once closed"

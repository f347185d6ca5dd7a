"""``mdp_db_pool_connections``: a psycopg_pool pool's connections in use and idle, read when
Prometheus scrapes, while the store that owns the pool is open."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from storage import PostgresStore
from telemetry.pools import watch_pool
from tests.telemetry.values import value

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

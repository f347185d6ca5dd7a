"""The history API's queries are range scans of the primary keys (EXPLAIN says so)."""

from __future__ import annotations

import re

import psycopg
import pytest

from charting.database import (
    HistoryDatabase,
    TickKey,
    candle_params,
    candle_queries,
    tick_params,
    tick_queries,
)
from core.intervals import Interval
from storage import PostgresStore
from tests.charting.data import MINUTE, T0, series, ticks

INSTRUMENTS = ("TEST:AAA", "TEST:BTCUSD", "TEST:ZZZ")


@pytest.fixture
async def stocked(store: PostgresStore, migrated_database: str) -> None:
    """Enough rows in both tables that a sequential scan would cost more than the index."""
    for instrument in INSTRUMENTS:
        for interval in (MINUTE, Interval.parse("5m"), Interval.parse("1h")):
            await store.write(candles=series(1500, interval=interval, instrument=instrument))
        await store.write(ticks=[ticks(12_000, instrument=instrument)])
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        conn.execute("ANALYZE candles")
        conn.execute("ANALYZE ticks")


def _assert_index_scan(plan: str, index: str, name: str) -> None:
    assert "Seq Scan" not in plan, f"{name}: {plan}"
    scans = rf"(Index Scan|Index Only Scan|Index Scan Backward) using {index}"
    assert re.search(rf"{scans}|Bitmap Index Scan on {index}", plan), f"{name}: {plan}"


@pytest.mark.usefixtures("stocked")
async def test_every_query_scans_a_primary_key(history: HistoryDatabase) -> None:
    start, end = T0 + 100 * MINUTE.ns, T0 + 1100 * MINUTE.ns
    for name, query in candle_queries().items():
        params = candle_params("TEST:BTCUSD", MINUTE, start, end) | {"limit": 1000}
        _assert_index_scan(await history.explain(query, params), "candles_pkey", name)
    first, after = TickKey(T0 + 10**9, 0), TickKey(T0 + 2 * 10**9, 0)
    for name, query in tick_queries().items():
        params = tick_params("TEST:BTCUSD", first, after) | {"limit": 1000}
        _assert_index_scan(await history.explain(query, params), "ticks_pkey", name)

"""The history API's queries are range scans of the primary keys, or of the covering index
of packed pages (EXPLAIN says so); feed gaps are read by their key too."""

from __future__ import annotations

import asyncio
import re

import psycopg
import pytest

from core.gaps import FeedGap, GapReason
from core.intervals import Interval
from storage import PostgresStore
from storage.pg_pages import candle_params
from storage.pg_reads import (
    PostgresReads,
    candle_queries,
    gap_params,
    gap_queries,
    tick_params,
    tick_queries,
)
from storage.reads import TickKey
from tests.charting.data import MINUTE, T0, series, ticks

INSTRUMENTS = ("TEST:AAA", "TEST:BTCUSD", "TEST:ZZZ")


@pytest.fixture
async def stocked(store: PostgresStore, migrated_database: str) -> bool:
    """Enough rows in both tables that a sequential scan would cost more than the index;
    true when the candles' pages are all-visible, as a closed range's soon are (a vacuum
    cannot mark them while another session of the test database holds an older snapshot)."""
    for instrument in INSTRUMENTS:
        for interval in (MINUTE, Interval.parse("5m"), Interval.parse("1h")):
            await store.write(candles=series(1500, interval=interval, instrument=instrument))
        await store.write(ticks=[ticks(12_000, instrument=instrument)])
        gaps = [
            FeedGap(instrument=instrument, start_ns=T0 + k * 10**10, end_ns=T0 + k * 10**10 + 10**9,
                    reason=GapReason.DISCONNECTED)
            for k in range(2000)
        ]  # fmt: skip
        await store.write(gaps=gaps)
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        conn.execute("ANALYZE ticks")
        conn.execute("ANALYZE feed_gaps")
        for _ in range(50):
            conn.execute("VACUUM ANALYZE candles")
            found = conn.execute(  # the table, or a hypertable's chunks (its children)
                "SELECT bool_and(relallvisible >= relpages) FROM pg_class"
                " WHERE oid = 'candles'::regclass OR oid IN"
                " (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'candles'::regclass)"
            ).fetchone()
            if found == (True,):
                return True
            await asyncio.sleep(0.1)
    return False


def _index(name: str) -> str:
    """A regular expression of index ``name``, or of a TimescaleDB chunk's copy of it: a key's
    copy is named ``"1_ticks_pkey"``, another index's ``_hyper_1_1_chunk_candles_packed``."""
    return rf'"?(?:\d+_|_hyper_\d+_\d+_chunk_)?(?:{name})"?'


def _assert_index_scan(plan: str, index: str, name: str) -> None:
    assert "Seq Scan" not in plan, f"{name}: {plan}"
    scans = rf"(Index Scan|Index Only Scan|Index Scan Backward) using {_index(index)}"
    assert re.search(rf"{scans}|Bitmap Index Scan on {_index(index)}", plan), f"{name}: {plan}"


async def test_every_query_scans_a_primary_key(history: PostgresReads, stocked: bool) -> None:
    start, end = T0 + 100 * MINUTE.ns, T0 + 1100 * MINUTE.ns
    for name, query in candle_queries().items():
        params = candle_params("TEST:BTCUSD", MINUTE, start, end) | {"limit": 1000, "rows": 1000}
        plan = await history.explain(query, params)
        if name == "page_packed" and stocked:  # the covering index alone: no table visit
            assert re.search(f"Index Only Scan using {_index('candles_packed')}", plan), plan
            assert "Sort" not in plan, plan
        elif name == "page_packed":
            _assert_index_scan(plan, "candles_(pkey|packed)", name)
        else:
            _assert_index_scan(plan, "candles_pkey", name)
    first, after = TickKey(T0 + 10**9, 0), TickKey(T0 + 2 * 10**9, 0)
    for name, query in tick_queries().items():
        params = tick_params("TEST:BTCUSD", first, after) | {"limit": 1000}
        _assert_index_scan(await history.explain(query, params), "ticks_pkey", name)
    for name, query in gap_queries().items():
        params = gap_params("TEST:BTCUSD", start, end) | {"limit": 1000}
        plan = await history.explain(query, params)
        _assert_index_scan(plan, "feed_gaps_pkey", name)
        assert "Sort" not in plan, plan

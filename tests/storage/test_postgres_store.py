"""What only the PostgreSQL store has: its SQL rows, its transactions, its schema check."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import psycopg
import pytest

from core.numbers import MAX_SCALE, format_fixed
from core.ticks import TickBatch
from storage import PostgresStore, SchemaNotReadyError, latest_version
from storage import postgres_store as postgres_store_module
from tests.storage.factories import T0, batch, candle, gap, tick

FOREVER = 2**62


def sql_rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode()).fetchall()


async def test_copy_writes_exact_decimals_at_every_scale(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    expected: list[tuple[str, str]] = []
    for scale in range(MAX_SCALE + 1):
        raws = [1, 10**scale - 1 or 1, 10**scale, 123_456_789, 2**63 - 1]
        n = len(raws)
        base = T0 + scale * 1_000_000
        ts = np.arange(n, dtype=np.int64) + base
        sizes = list(reversed(raws))
        await postgres_store.write(
            [
                TickBatch(
                    "TEST:BTCUSD",
                    scale,
                    MAX_SCALE - scale,
                    np.arange(n, dtype=np.int64) + scale * 100,
                    np.array(raws, dtype=np.int64),
                    np.array(sizes, dtype=np.int64),
                    np.zeros(n, dtype=np.int8),
                    ts,
                    ts,
                    np.ones(n, dtype=np.int64),
                )
            ]
        )
        expected += [
            (format_fixed(p, scale), format_fixed(s, MAX_SCALE - scale))
            for p, s in zip(raws, sizes, strict=True)
        ]
    stored = sql_rows(
        migrated_database, "SELECT price::text, size::text FROM ticks ORDER BY ts_event_ns"
    )
    assert stored == expected
    for scale in range(MAX_SCALE + 1):  # one scale at a time: together they overflow int64
        start = T0 + scale * 1_000_000
        read = await postgres_store.ticks("TEST:BTCUSD", start, start + 1_000_000)
        assert (read.price_scale, read.size_scale) == (scale, MAX_SCALE - scale)
        texts = [(format_fixed(int(p), scale), format_fixed(int(s), MAX_SCALE - scale))
                 for p, s in zip(read.price, read.size, strict=True)]  # fmt: skip
        assert texts == expected[scale * 5 : scale * 5 + 5]


async def test_ticks_that_do_not_fit_one_batch_are_refused_clearly(
    postgres_store: PostgresStore,
) -> None:
    await postgres_store.write([batch(tick(1, 0, price="92233720368547758.07"))])
    await postgres_store.write([batch(tick(2, 1, price="0.001"))])
    with pytest.raises(ValueError, match="do not fit"):
        await postgres_store.ticks("TEST:BTCUSD", 0, FOREVER)


async def test_tick_rows_keep_exact_nanoseconds_beside_microsecond_timestamps(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    await postgres_store.write([batch(tick(7, 123_456_789, price="100.50", size="0.125"))])
    ((instrument, trade_id, price, size, side, ts_event, ts_event_ns, ts_recv_ns, trades),) = (
        sql_rows(
            migrated_database,
            "SELECT instrument, trade_id, price, size, side, ts_event, ts_event_ns, ts_recv_ns,"
            " trades FROM ticks",
        )
    )
    assert (instrument, trade_id, price, size, side, trades) == (
        "TEST:BTCUSD",
        7,
        Decimal("100.50"),
        Decimal("0.125"),
        1,
        1,
    )
    assert ts_event == datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    assert (ts_event_ns, ts_recv_ns) == (T0 + 123_456_789, T0 + 124_456_789)


async def test_candle_rows_hold_decimal_text_and_their_close_time(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    await postgres_store.write(candles=[candle(0)])
    ((open_, volume, quote, vwap, open_time, close_time),) = sql_rows(
        migrated_database,
        "SELECT open::text, volume::text, quote_volume::text, vwap::text, open_time,"
        " close_time FROM candles",
    )
    assert (open_, volume, quote) == ("100.50", "3.250", "327.16500")
    assert vwap == str(candle(0).vwap)
    assert (open_time, close_time) == (
        datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
    )


async def test_a_failed_write_stores_nothing_not_even_its_offsets(
    postgres_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(postgres_store_module, "_upsert_candles", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await postgres_store.write(
            [batch(tick(1, 0))], [candle(0)], offsets={("md.ticks", 0): 9}, group="writer"
        )
    monkeypatch.undo()
    assert len(await postgres_store.ticks("TEST:BTCUSD", 0, FOREVER)) == 0
    assert await postgres_store.stored_offsets("writer") == {}
    assert await postgres_store.instruments() == []
    report = await postgres_store.write([batch(tick(1, 0))], [candle(0)])  # the pool recovered
    assert (report.ticks_written, report.candles_written) == (1, 1)
    assert await postgres_store.instruments() == ["TEST:BTCUSD"]


async def test_feed_gaps_go_in_the_same_transaction_as_the_offsets(
    postgres_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(postgres_store_module, "_store_offsets", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await postgres_store.write(gaps=[gap(0, 10)], offsets={("md.ticks", 0): 3}, group="w")
    monkeypatch.undo()
    assert await postgres_store.gaps("TEST:BTCUSD", 0, FOREVER) == []
    assert await postgres_store.stored_offsets("w") == {}
    report = await postgres_store.write(gaps=[gap(0, 10)], offsets={("md.ticks", 0): 3}, group="w")
    assert report.gaps_written == 1
    assert await postgres_store.gaps("TEST:BTCUSD", 0, FOREVER) == [gap(0, 10)]
    assert await postgres_store.stored_offsets("w") == {("md.ticks", 0): 3}


async def test_feed_gap_rows_keep_exact_nanoseconds_beside_a_microsecond_span(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    await postgres_store.write(gaps=[gap(1_500, 2_001), gap(5_000, 6_000, noticed=0)])
    rows = sql_rows(
        migrated_database,
        f"SELECT start_time, end_time, start_ns - {T0}, end_ns - {T0}, reason, noticed,"
        " noticed_ns FROM feed_gaps ORDER BY start_ns",
    )
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert rows == [  # the timestamps cover the span: start truncated, end rounded up
        (at.replace(microsecond=1), at.replace(microsecond=3), 1_500, 2_001, "disconnected",
         at.replace(microsecond=1002), T0 + 1_002_001),
        (at.replace(microsecond=5), at.replace(microsecond=6), 5_000, 6_000, "disconnected",
         None, None),
    ]  # fmt: skip


async def test_concurrent_writers_of_the_same_ticks_store_each_once(migrated_database: str) -> None:
    ticks = batch(*(tick(i, i * 1000) for i in range(500)))
    async with (
        PostgresStore.open(migrated_database) as one,
        PostgresStore.open(migrated_database) as two,
    ):
        reports = await asyncio.gather(*(store.write([ticks]) for store in (one, two, one, two)))
        assert sum(r.ticks_written for r in reports) == 500
        assert sum(r.ticks_duplicate for r in reports) == 1500
        assert len(await one.ticks("TEST:BTCUSD", 0, FOREVER)) == 500


async def test_an_unmigrated_database_is_refused_with_advice(fresh_database: str) -> None:
    with pytest.raises(SchemaNotReadyError, match="mdp db migrate"):
        async with PostgresStore.open(fresh_database):
            pass


async def test_open_can_migrate_first(fresh_database: str) -> None:
    async with PostgresStore.open(fresh_database, migrate=True) as store:
        await store.write([batch(tick(1, 0))])
    rows = sql_rows(fresh_database, "SELECT max(version) FROM schema_migrations")
    assert rows == [(latest_version(),)]


async def test_the_last_trade_read_scans_the_ticks_key_backwards_and_skips_unknown_instruments(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    await postgres_store.write(
        [
            batch(*(tick(i, i * 1_000, instrument=f"TEST:{k}") for i in range(k, 3_001, 3)))
            for k in range(3)
        ]
    )
    with psycopg.connect(migrated_database) as conn:
        conn.execute("ANALYZE ticks")
    query = postgres_store_module._LAST_TRADES.replace("%s", "ARRAY['TEST:1', 'TEST:9']")
    plan = "\n".join(str(row[0]) for row in sql_rows(migrated_database, f"EXPLAIN {query}"))
    # (index only); on TimescaleDB, of each chunk's copy of the key ("1_ticks_pkey")
    assert re.search(r'Scan Backward using "?(\d+_)?ticks_pkey"? on (ticks|_hyper_)', plan), plan
    assert await postgres_store.last_trades(["TEST:1", "TEST:9"]) == {
        "TEST:1": (2_998, T0 + 2_998_000)
    }

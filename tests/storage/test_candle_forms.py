"""Each candle row keeps its read forms (JSON object, packed words, scales) equal to the
writer's functions: after an upsert, after a revision, and after migration 0004 filled rows
written before it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.intervals import parse_intervals
from ingest.files import read_ticks
from storage import PostgresStore, StorageMode, migrate
from storage.candle_rows import CANDLE_COLUMNS, candle_json, candle_row, pack_candle
from storage.migrations import migrations
from tests.storage.factories import candle

FORMS = "SELECT open_time, price_scale, size_scale, packed, json FROM candles ORDER BY open_time"
FILES = {
    "binance": ("binance-btcusdt-2026-01-01/BTCUSDT-aggTrades-2026-01-01.head5000.csv", "skip"),
    "kraken": ("kraken-xbtusdt-2025-11-10/trades.json", "fill"),
}
_OLD_COLUMNS = CANDLE_COLUMNS[: CANDLE_COLUMNS.index("price_scale")]
"""The columns a writer filled before migration 0004."""


def engine_candles(path: Path, empty: str) -> list[Candle]:
    """The engine's final 1m and 5m candles of a real trade file."""
    config = EngineConfig(
        intervals=parse_intervals(["1m", "5m"]), empty=EmptyPolicy(empty), emit_open=False
    )
    engine = CandleEngine(config)
    final: dict[tuple[str, str, int], Candle] = {}
    for batch in read_ticks(path, chunk_rows=1000):
        final.update((c.key, c) for c in engine.feed(batch).candles)
    final.update((c.key, c) for c in engine.flush().candles)
    return sorted(final.values(), key=lambda c: (c.interval.ns, c.open_time))


def beyond_64_bits() -> Candle:
    """A candle whose notional needs more than 64 bits at its scales (packed: none)."""
    return msgspec.structs.replace(
        candle(7), volume_raw=10**15, taker_buy_volume_raw=10**14, quote_volume_raw=10**20
    )


def stored_forms(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(row[1:]) for row in conn.execute(FORMS).fetchall()]


def expected_forms(candles: list[Candle]) -> list[tuple[Any, ...]]:
    return [
        (c.price_scale, c.size_scale, pack_candle(c), candle_json(c).decode())
        for c in sorted(candles, key=lambda c: c.open_time)
    ]


@pytest.mark.parametrize("venue", sorted(FILES))
async def test_stored_read_forms_are_the_writers_on_real_candles(
    shared_data: Path, migrated_database: str, venue: str
) -> None:
    name, empty = FILES[venue]
    candles = engine_candles(shared_data / name, empty)
    if empty == "fill":
        assert any(c.first_trade_id is None for c in candles), "flat candles take part"
    async with PostgresStore.open(migrated_database) as store:
        for interval in ("1m", "5m"):
            await store.write(candles=[c for c in candles if c.interval.label == interval])
            found = stored_forms(migrated_database)
            assert found == expected_forms([c for c in candles if c.interval.label == interval])
            with psycopg.connect(migrated_database) as conn:
                conn.execute("DELETE FROM candles")


async def test_a_revision_rewrites_the_read_forms(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    first = candle(0)
    revised = msgspec.structs.replace(
        first, close_raw=first.low_raw, revision=1, status=CandleStatus.REVISED
    )
    await postgres_store.write(candles=[first])
    await postgres_store.write(candles=[revised])
    assert stored_forms(migrated_database) == expected_forms([revised])
    await postgres_store.write(candles=[first])  # a lower revision changes nothing
    assert stored_forms(migrated_database) == expected_forms([revised])


async def test_a_value_beyond_64_bits_leaves_packed_empty(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    big = beyond_64_bits()
    assert pack_candle(big) is None
    await postgres_store.write(candles=[big, candle(8)])
    (big_row, small_row) = stored_forms(migrated_database)
    assert big_row == (2, 3, None, candle_json(big).decode())
    assert small_row[2] == pack_candle(candle(8))


def test_migration_4_fills_rows_written_before_it_as_the_writer_would(
    shared_data: Path, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module("storage.migrate")  # the package exports its function
    real = migrations
    monkeypatch.setattr(module, "migrations", lambda mode: real(mode)[:3])
    assert migrate(fresh_database, StorageMode.PLAIN).version == 3
    name, empty = FILES["kraken"]
    candles = [*engine_candles(shared_data / name, empty), beyond_64_bits()]
    candles = [c for c in candles if c.interval.label == "1m"]  # one key per open time
    with psycopg.connect(fresh_database) as conn, conn.cursor() as cursor:
        columns = ", ".join(_OLD_COLUMNS)
        with cursor.copy(f"COPY candles ({columns}) FROM STDIN") as copy:
            for c in candles:
                copy.write_row(candle_row(c)[: len(_OLD_COLUMNS)])
    monkeypatch.undo()
    assert migrate(fresh_database).applied == (4,)
    assert stored_forms(fresh_database) == expected_forms(candles)

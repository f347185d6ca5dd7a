"""Each candle row keeps its read forms (JSON object, packed words, scales) and its gap flag
equal to the writer's functions: after an upsert, after a revision, after migration 0004
filled rows written before it, and after migration 0005 added the flag to rows before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import psycopg
import pytest

from core.candles import Candle, CandleStatus
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.intervals import parse_intervals
from core.present.packed import GAP_FLAG, PACKED_DTYPE, pack_candle
from core.present.text import candle_json, candle_record
from ingest.files.reader import read_ticks
from storage import PostgresStore, latest_version, migrate
from storage.candle_rows import CANDLE_COLUMNS, candle_row
from tests.storage.factories import MINUTE, candle
from tests.storage.schemas import migrated_to

FORMS = (
    "SELECT open_time, price_scale, size_scale, packed, json, gap FROM candles ORDER BY open_time"
)
FILES = {
    "binance": ("binance-btcusdt-2026-01-01/BTCUSDT-aggTrades-2026-01-01.head5000.csv", "skip"),
    "kraken": ("kraken-xbtusdt-2025-11-10/trades.json", "fill"),
}
_OLD_COLUMNS = CANDLE_COLUMNS[: CANDLE_COLUMNS.index("price_scale")]
"""The columns a writer filled before migration 0004."""
_V4_COLUMNS = CANDLE_COLUMNS[: CANDLE_COLUMNS.index("gap")]
"""The columns a writer filled before migration 0005."""


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


def stored_forms(url: str, query: str = FORMS) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(row[1:]) for row in conn.execute(query.encode()).fetchall()]


def expected_forms(candles: list[Candle]) -> list[tuple[Any, ...]]:
    return [
        (c.price_scale, c.size_scale, pack_candle(c), candle_json(c).decode(), c.gap)
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
    assert big_row == (2, 3, None, candle_json(big).decode(), False)
    assert small_row[2] == pack_candle(candle(8))


async def test_a_flagged_candle_keeps_its_flag_in_every_form(
    postgres_store: PostgresStore, migrated_database: str
) -> None:
    flagged = msgspec.structs.replace(candle(0), gap=True)
    await postgres_store.write(candles=[flagged, candle(1)])
    (flagged_row, plain_row) = stored_forms(migrated_database)
    assert flagged_row == expected_forms([flagged])[0]
    assert flagged_row[3].endswith(',"gap":true}')
    assert plain_row[3].endswith(',"gap":false}')
    words = [flagged_row[2], plain_row[2]]
    status = [int(row["status"]) for row in (np.frombuffer(w, PACKED_DTYPE)[0] for w in words)]
    assert status == [GAP_FLAG | 1, 1]  # closed (code 1), with and without the flag bit
    read = await postgres_store.candles(flagged.instrument, MINUTE, 0, 2**62)
    assert [c.gap for c in read] == [True, False]


@pytest.mark.parametrize("flags", [(False, True), (True, False), (True, True)])
async def test_the_latest_revision_sets_or_clears_the_flag(
    postgres_store: PostgresStore, migrated_database: str, flags: tuple[bool, bool]
) -> None:
    first = msgspec.structs.replace(candle(0), gap=flags[0])
    revised = msgspec.structs.replace(first, revision=1, status=CandleStatus.REVISED, gap=flags[1])
    await postgres_store.write(candles=[first])
    await postgres_store.write(candles=[revised])
    assert stored_forms(migrated_database) == expected_forms([revised])
    await postgres_store.write(candles=[first])  # a lower revision changes nothing
    assert stored_forms(migrated_database) == expected_forms([revised])


def test_migrations_4_and_5_fill_rows_written_before_them_as_the_writer_would(
    shared_data: Path, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, empty = FILES["kraken"]
    candles = [*engine_candles(shared_data / name, empty), beyond_64_bits()]
    candles = [c for c in candles if c.interval.label == "1m"]  # one key per open time
    with migrated_to(fresh_database, 3, monkeypatch):
        copy_rows(fresh_database, _OLD_COLUMNS, [candle_row(c) for c in candles])
    assert migrate(fresh_database).applied == tuple(range(4, latest_version() + 1))
    assert stored_forms(fresh_database) == expected_forms(candles)


def v4_json(c: Candle) -> str:
    """The JSON a writer before migration 0005 stored: every field but ``gap``, in order."""
    fields = msgspec.structs.asdict(candle_record(c))
    del fields["gap"]
    return msgspec.json.encode(fields).decode()


def test_migration_5_appends_the_flag_to_the_stored_json_of_rows_written_before_it(
    shared_data: Path, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, empty = FILES["kraken"]
    candles = [*engine_candles(shared_data / name, empty), beyond_64_bits()]
    candles = [c for c in candles if c.interval.label == "1m"]
    rows = [(*candle_row(c)[: len(_V4_COLUMNS) - 1], v4_json(c)) for c in candles]
    without_json = candles[-2]  # as a plain SQL writer leaves it
    rows[-2] = (*rows[-2][:-1], None)
    with migrated_to(fresh_database, 4, monkeypatch):
        copy_rows(fresh_database, _V4_COLUMNS, rows)
        before = stored_forms(fresh_database, FORMS.replace(", gap", ""))
    assert migrate(fresh_database).applied == tuple(range(5, latest_version() + 1))
    after = stored_forms(fresh_database)
    ordered = sorted(candles, key=lambda c: c.open_time)
    for old, new, c in zip(before, after, ordered, strict=True):
        assert new[:3] == old[:3]  # scales and packed words as they were
        assert new[4] is False
        if c is without_json:
            assert new[3] is None
            continue
        assert new[3].endswith(',"gap":false}')
        assert new[3] == candle_json(c).decode()  # byte for byte: the order kept
        assert (
            json.loads(new[3]) == json.loads(candle_json(c)) == json.loads(old[3]) | {"gap": False}
        )


def copy_rows(url: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    statement = f"COPY candles ({', '.join(columns)}) FROM STDIN"
    with psycopg.connect(url) as conn, conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row[: len(columns)])

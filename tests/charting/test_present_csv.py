"""The presentation package writes a candle's CSV line byte for byte as the database did
(:data:`SQL_CSV_LINE`, the expression the history API's CSV pages were read with before they
moved to :mod:`core.present`), on candles of real exchange trades: CSV pages are the same
bytes as before."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from core.candles import Candle
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.intervals import Interval, parse_intervals
from core.present import Document, PageInfo, candle_format
from core.present.text import csv_line
from ingest.files.reader import read_ticks
from storage import PostgresStore
from storage.candle_rows import latest_revisions
from storage.pg_pages import CANDLE_RANGE, candle_params
from tests.charting.conftest import MakeClient

KRAKEN = Path("kraken-xbtusdt-2025-11-10") / "trades.json"
BINANCE = Path("binance-btcusdt-2026-01-01") / "BTCUSDT-aggTrades-2026-01-01.head5000.csv"
INTERVALS = parse_intervals(["1m", "5m", "1h"])
SQL_CSV_LINE = """concat_ws(',',
    to_char(open_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), open, high, low,
    close, volume, quote_volume, trades, vwap, taker_buy_volume,
    coalesce(first_trade_id::text, ''), coalesce(last_trade_id::text, ''), status, revision,
    gap::text)"""
"""A stored candle's CSV line after instrument and interval, as the database wrote it."""


def candles_of(path: Path) -> list[Candle]:
    """Every candle the engine makes of the file's trades, in its latest revision: closed,
    revised, flat fill candles (no trade ids) and the open ones the file ends inside."""
    engine = CandleEngine(EngineConfig(intervals=INTERVALS, empty=EmptyPolicy.FILL))
    made: list[Candle] = []
    for batch in read_ticks(path):
        made.extend(engine.feed(batch).candles)
    made.extend(engine.finish().candles)
    return latest_revisions(made)


async def sql_lines(database: str, instrument: str, interval: Interval, end: int) -> list[str]:
    query = f"SELECT {SQL_CSV_LINE} {CANDLE_RANGE} ORDER BY open_time"
    async with await psycopg.AsyncConnection.connect(database) as conn:
        cursor = await conn.execute(query, candle_params(instrument, interval, 0, end))
        rows = await cursor.fetchall()
    return [f"{instrument},{interval.label},{row[0]}\n" for row in rows]


@pytest.mark.parametrize(
    ("source", "has_flat"), [(KRAKEN, True), (BINANCE, False)], ids=["kraken", "binance"]
)
async def test_csv_lines_are_the_databases_byte_for_byte(
    shared_data: Path,
    store: PostgresStore,
    migrated_database: str,
    make_client: MakeClient,
    source: Path,
    has_flat: bool,
) -> None:
    candles = candles_of(shared_data / source)
    assert any(c.first_trade_id is None for c in candles) == has_flat  # empty trade ids
    await store.write(candles=candles)
    (instrument,) = {c.instrument for c in candles}
    end = max(c.open_time for c in candles) + 1
    client = make_client(intervals=INTERVALS)
    csv = candle_format("csv")
    assert csv is not None
    for interval in INTERVALS:
        mine = sorted((c for c in candles if c.interval == interval), key=lambda c: c.open_time)
        assert mine
        assert [csv_line(c) for c in mine] == await sql_lines(
            migrated_database, instrument, interval, end
        )
        query = {"instrument": instrument, "interval": interval.label, "start": "0",
                 "end": str(end // 10**6 + 1), "format": "csv"}  # fmt: skip
        response = await client.get("/v1/candles", params=query)
        assert response.status_code == 200, response.text
        page = PageInfo(instrument, interval.label, None, 0, end, None, None)
        out = csv.encoder(Document(page=page))
        assert response.content == out.head() + out.candles(mine) + out.tail()

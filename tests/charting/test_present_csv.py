"""The presentation package writes a candle's CSV line byte for byte as the database does
(``charting.database.CSV_LINE``), on candles of real exchange trades, so that CSV pages can
move from SQL to :mod:`core.present` without a byte of difference."""

from __future__ import annotations

from pathlib import Path

import pytest

from charting import HistoryDatabase
from charting.database import CSV_LINE
from core.candles import Candle
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.intervals import Interval, parse_intervals
from core.present import Document, PageInfo, candle_format
from core.present.text import csv_line
from ingest.files.reader import read_ticks
from storage import PostgresStore
from storage.candle_rows import latest_revisions
from tests.charting.conftest import MakeClient

KRAKEN = Path("kraken-xbtusdt-2025-11-10") / "trades.json"
BINANCE = Path("binance-btcusdt-2026-01-01") / "BTCUSDT-aggTrades-2026-01-01.head5000.csv"
INTERVALS = parse_intervals(["1m", "5m", "1h"])


def candles_of(path: Path) -> list[Candle]:
    """Every candle the engine makes of the file's trades, in its latest revision: closed,
    revised, flat fill candles (no trade ids) and the open ones the file ends inside."""
    engine = CandleEngine(EngineConfig(intervals=INTERVALS, empty=EmptyPolicy.FILL))
    made: list[Candle] = []
    for batch in read_ticks(path):
        made.extend(engine.feed(batch).candles)
    made.extend(engine.finish().candles)
    return latest_revisions(made)


async def sql_lines(
    history: HistoryDatabase, instrument: str, interval: Interval, end: int
) -> list[str]:
    lines: list[str] = []
    async for rows in history.candle_rows(CSV_LINE, instrument, interval, 0, end, 100):
        lines.extend(f"{instrument},{interval.label},{row[0]}\n" for row in rows)
    return lines


@pytest.mark.parametrize(
    ("source", "has_flat"), [(KRAKEN, True), (BINANCE, False)], ids=["kraken", "binance"]
)
async def test_csv_lines_are_the_databases_byte_for_byte(
    shared_data: Path,
    store: PostgresStore,
    history: HistoryDatabase,
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
        assert [csv_line(c) for c in mine] == await sql_lines(history, instrument, interval, end)
        query = {"instrument": instrument, "interval": interval.label, "start": "0",
                 "end": str(end // 10**6 + 1), "format": "csv"}  # fmt: skip
        response = await client.get("/v1/candles", params=query)
        assert response.status_code == 200, response.text
        page = PageInfo(instrument, interval.label, None, 0, end, None, None)
        out = csv.encoder(Document(page=page))
        assert response.content == out.head() + out.candles(mine) + out.tail()

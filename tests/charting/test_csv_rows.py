"""CSV lines from stored candle texts: one line per candle, the open time as ISO 8601 UTC."""

from __future__ import annotations

from charting.candle_formats import CsvCandles, PageInfo
from storage.memory_reads import candle_text
from tests.charting.data import T0, series

INFO = PageInfo("TEST:BTCUSD", "1m", None, T0, T0, None, None)


def test_each_text_row_becomes_a_line_after_instrument_interval_and_time() -> None:
    candle = series(1, open_last=False)[0]
    row = candle_text(candle)
    line = CsvCandles(INFO).rows([row]).decode()
    assert line == "TEST:BTCUSD,1m,2026-01-01T00:00:00Z," + ",".join(row[1:]) + "\n"
    assert CsvCandles(INFO).rows([]) == b""


def test_an_open_time_between_seconds_keeps_its_fraction() -> None:
    row = candle_text(series(1)[0])
    moved = (T0 + 1_500_000_000, *row[1:])
    line = CsvCandles(INFO).rows([row, moved]).decode().splitlines()
    assert [text.split(",")[2] for text in line] == [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:01.5Z",
    ]

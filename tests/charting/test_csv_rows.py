"""CSV lines of a page from its stored JSON form: one line per candle, the open time as
ISO 8601 UTC."""

from __future__ import annotations

import msgspec

from core.present import Document, PageInfo
from core.present.csv_table import CsvCandles
from core.present.text import candle_json, candle_record
from tests.charting.data import T0, series

INFO = PageInfo("TEST:BTCUSD", "1m", None, T0, T0, None, None)


def test_each_stored_row_becomes_a_line_after_instrument_interval_and_time() -> None:
    candle = series(1, open_last=False)[0]
    values = msgspec.structs.astuple(candle_record(candle))[3:]
    texts = ["" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    line = CsvCandles(Document(page=INFO)).stored(candle_json(candle)).decode()
    assert line == "TEST:BTCUSD,1m,2026-01-01T00:00:00Z," + ",".join(texts) + "\n"
    assert CsvCandles(Document(page=INFO)).stored(b"") == b""


def test_an_open_time_between_seconds_keeps_its_fraction() -> None:
    stored = candle_json(series(1)[0])  # a stored row's json, and one opening in between
    moved = stored.replace(b'"2026-01-01T00:00:00Z"', b'"2026-01-01T00:00:01.5Z"')
    body = b",".join([stored, moved])
    lines = CsvCandles(Document(page=INFO)).stored(body).decode().splitlines()
    assert [text.split(",")[2] for text in lines] == [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:01.5Z",
    ]

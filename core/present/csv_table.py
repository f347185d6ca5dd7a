"""CSV: a header row of the field names, then one row per candle (``\\n`` line ends)."""

from __future__ import annotations

from collections.abc import Sequence

from core.candles import Candle
from core.present.document import CandleFormat, Document
from core.present.text import CANDLE_COLUMNS, csv_lines


class CsvCandles:
    def __init__(self, document: Document) -> None:
        self._fields = document.fields
        self._line = csv_lines(document.fields)

    def head(self) -> bytes:
        return (",".join(self._fields) + "\n").encode()

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return "".join([self._line(c) for c in candles]).encode()

    def tail(self) -> bytes:
        return b""


FORMAT = CandleFormat(
    name="csv",
    media_type="text/csv; charset=utf-8",
    suffixes=(".csv",),
    encoder=CsvCandles,
    table_fields=CANDLE_COLUMNS,
)

"""CSV: a header row of the field names, then one row per candle (``\\n`` line ends).

Stored candles are written from their JSON ready form (:func:`~core.present.text.json_records`):
the same texts :func:`~core.present.text.candle_record` gave when the row was written, so a
page needs no :class:`Candle` and its bytes are those of the candles' lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.candles import Candle
from core.present.document import CandleFormat, Document, ReadForm
from core.present.text import CANDLE_COLUMNS, csv_lines, json_records, record_csv_lines


class CsvCandles:
    def __init__(self, document: Document) -> None:
        self._fields = document.fields
        self._line = csv_lines(document.fields)
        self._record_line = record_csv_lines(document.fields)

    def head(self) -> bytes:
        return (",".join(self._fields) + "\n").encode()

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return "".join([self._line(c) for c in candles]).encode()

    def stored(self, body: bytes) -> bytes:
        if not body:
            return b""
        return "".join([self._record_line(r) for r in json_records(body)]).encode()

    def tail(self) -> bytes:
        return b""

    def whole(self, body: bytes) -> bytes:
        return b"".join([self.head(), self.stored(body), self.tail()])


FORMAT = CandleFormat(
    name="csv",
    media_type="text/csv; charset=utf-8",
    suffixes=(".csv",),
    encoder=CsvCandles,
    table_fields=CANDLE_COLUMNS,
    reads=ReadForm.JSON,
)

"""Parquet (zstd): a row group per chunk, each handed on as soon as it is written; the
columns and types of :mod:`core.present.arrow_stream`."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq

from core.candles import Candle
from core.present.arrow_stream import ArrowBatches
from core.present.document import CandleFormat, Document, ReadForm
from core.present.text import CANDLE_COLUMNS


class ParquetCandles(ArrowBatches):
    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self._out = Drain()
        self._writer = pq.ParquetWriter(self._out, self.schema, compression="zstd")

    def head(self) -> bytes:
        return self._out.take()

    def stored(self, body: bytes) -> bytes:
        if body:
            self._writer.write_batch(self.stored_batch(body))
        return self._out.take()

    def candles(self, candles: Sequence[Candle]) -> bytes:
        if candles:
            self._writer.write_batch(self.candle_batch(candles))
        return self._out.take()

    def tail(self) -> bytes:
        self._writer.close()
        return self._out.take()

    def whole(self, body: bytes) -> bytes:
        return b"".join([self.head(), self.stored(body), self.tail()])


class Drain(io.RawIOBase):
    """A write-only file that hands over what was written since the last :meth:`take`."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


FORMAT = CandleFormat(
    name="parquet",
    media_type="application/vnd.apache.parquet",
    suffixes=(".parquet",),
    encoder=ParquetCandles,
    accepts=("application/x-parquet",),
    table_fields=CANDLE_COLUMNS,
    reads=ReadForm.PACKED,
    whole_table=True,
    threaded=True,
    binary=True,
)

"""Arrow: the IPC stream format, ``decimal128`` columns at the finest scale of the document.

The schema comes first, then a record batch per chunk, then the end of the stream. Each is one
encapsulated IPC message as Arrow serialises it: the same bytes a stream writer gives, without
copying them through a Python file. Batches are built from packed rows
(:mod:`core.present.packed`): stored rows' ``packed`` column as it is, candles packed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pyarrow as pa

from core.candles import Candle
from core.present.document import CandleFormat, Document, ReadForm, Scales
from core.present.packed import (
    DECIMAL_COLUMNS,
    DECIMAL_PRECISION,
    decimal_batch,
    pack_candles,
    packed_batch,
    packed_rows,
)


def arrow_schema(scales: Scales, fields: Sequence[str]) -> pa.Schema:
    """The Arrow schema of candle ``fields`` whose decimals have ``scales`` places."""
    columns = []
    for name in fields:
        if name in ("instrument", "interval", "status"):
            kind = pa.string()
        elif name == "open_time":
            kind = pa.timestamp("ns", tz="UTC")
        elif name in DECIMAL_COLUMNS:
            kind = pa.decimal128(DECIMAL_PRECISION, scales.of_column(name))
        elif name == "gap":
            kind = pa.bool_()
        else:
            kind = pa.int64()
        columns.append(pa.field(name, kind))
    return pa.schema(columns)


class ArrowBatches:
    """Packed rows or candles to record batches of the document's schema."""

    def __init__(self, document: Document) -> None:
        self._page = document.page
        self.schema = arrow_schema(document.scales, document.fields)

    def stored_batch(self, body: bytes) -> pa.RecordBatch:
        """A batch of stored rows' joined ``packed`` column (a page: one instrument)."""
        page = self._page
        if page is None:
            raise ValueError("stored rows are written as pages of one instrument and interval")
        return packed_batch(packed_rows(body), self.schema, page.instrument, page.interval)

    def candle_batch(self, candles: Sequence[Candle]) -> pa.RecordBatch:
        page = self._page
        if page is None:
            instrument: str | list[str] = [c.instrument for c in candles]
            interval: str | list[str] = [c.interval.label for c in candles]
        else:
            instrument, interval = page.instrument, page.interval
        rows = pack_candles(candles)
        if rows is None:  # a value beyond 64 bits
            return decimal_batch(candles, self.schema, instrument, interval)
        return packed_batch(rows, self.schema, instrument, interval)


END_OF_STREAM: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"
"""The IPC stream's end: a continuation marker and a zero length."""


class ArrowCandles(ArrowBatches):
    def head(self) -> bytes:
        return bytes(self.schema.serialize().to_pybytes())

    def stored(self, body: bytes) -> bytes:
        return self._message(self.stored_batch(body)) if body else b""

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self._message(self.candle_batch(candles)) if candles else b""

    def tail(self) -> bytes:
        return END_OF_STREAM

    def whole(self, body: bytes) -> memoryview:
        """Written straight into one buffer of the stream's exact size: a page is megabytes,
        and each fresh megabyte copied costs page faults as well as the copy."""
        schema = self.schema.serialize()
        if not body:
            return memoryview(b"".join([schema.to_pybytes(), END_OF_STREAM]))
        batch = self.stored_batch(body)
        size = schema.size + pa.ipc.get_record_batch_size(batch) + len(END_OF_STREAM)
        buffer = pa.allocate_buffer(size)
        with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buffer), self.schema) as stream:
            stream.write_batch(batch)
        return memoryview(buffer)

    @staticmethod
    def _message(batch: pa.RecordBatch) -> bytes:
        return bytes(batch.serialize().to_pybytes())


FORMAT = CandleFormat(
    name="arrow",
    media_type="application/vnd.apache.arrow.stream",
    suffixes=(".arrows", ".arrow"),
    encoder=ArrowCandles,
    accepts=("application/vnd.apache.arrow.file",),
    reads=ReadForm.PACKED,
    whole_table=True,
    binary=True,
)

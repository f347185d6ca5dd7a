"""Candle pages in each format, written a chunk at a time.

Every format carries the columns of :data:`core.tables.CANDLE_COLUMNS` (the layout of
``mdp candles``' CSV, JSON lines and Parquet) followed by ``status``, ``revision`` and
``gap`` (the candle overlaps a feed gap). Decimals stay exact: text in JSON and CSV,
``decimal128`` in Arrow and Parquet (each column at the finest scale of the page), open times
as ISO 8601 UTC text or ``timestamp[ns, UTC]``, ``gap`` a boolean (``true``/``false`` in CSV).

Stored candles arrive through :class:`storage.reads.HistoryReads` in a ready form: JSON pages
as the rows' JSON objects joined by storage, Arrow and Parquet pages as packed integer rows
(:mod:`charting.packed`); CSV pages as rows of exact texts (:data:`storage.reads.CandleText`).
Rolled-up candles arrive as :class:`Candle` s and take the same functions
(:func:`storage.candle_rows.candle_json`, :func:`charting.packed.pack_candles`), so both paths
give identical bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from charting.formats import MEDIA_TYPES, Format
from charting.packed import (
    DECIMAL_COLUMNS,
    DECIMAL_PRECISION,
    decimal_batch,
    pack_candles,
    packed_batch,
)
from core.candles import Candle
from core.intervals import NS_PER_SECOND
from core.tables import CANDLE_COLUMNS, iso_utc
from storage.candle_rows import candle_json, candle_record
from storage.packed_rows import packed_rows
from storage.reads import CandleText, ReadyForm

CANDLE_FIELDS: Final = (*CANDLE_COLUMNS, "status", "revision", "gap")
"""The columns of every candle response, in order (those of
:class:`storage.candle_rows.CandleRecord`)."""
READ_FORMS: Final = {
    Format.JSON: ReadyForm.JSON,
    Format.ARROW: ReadyForm.PACKED,
    Format.PARQUET: ReadyForm.PACKED,
}
"""The stored ready form each format is written from (CSV: from candle texts)."""


@dataclass(frozen=True, slots=True)
class Scales:
    """Decimal places of each decimal column over a page (Arrow needs them up front)."""

    price: int = 0
    size: int = 0
    quote: int = 0
    vwap: int = 0

    @classmethod
    def of(cls, candles: Sequence[Candle]) -> Scales:
        return cls(
            price=max((c.price_scale for c in candles), default=0),
            size=max((c.size_scale for c in candles), default=0),
            quote=max((c.price_scale + c.size_scale for c in candles), default=0),
            vwap=max((c.vwap_scale for c in candles), default=0),
        )

    def of_column(self, name: str) -> int:
        if name in ("volume", "taker_buy_volume"):
            return self.size
        if name == "quote_volume":
            return self.quote
        if name == "vwap":
            return self.vwap
        return self.price


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What the JSON envelope says about the page besides its candles."""

    instrument: str
    interval: str
    rolled_up_from: str | None
    start: int
    end: int
    next_cursor: str | None
    next_url: str | None


class CandleEncoder(Protocol):
    format: Format

    def head(self) -> bytes: ...

    def candles(self, candles: Sequence[Candle]) -> bytes: ...

    def tail(self) -> bytes: ...


class ReadyEncoder(CandleEncoder, Protocol):
    """An encoder of stored pages read in a ready form (:data:`READ_FORMS`)."""

    form: ReadyForm

    def stored(self, body: bytes) -> bytes:
        """A chunk of the page: ``body`` is the joined form of its rows."""
        ...

    def whole(self, body: bytes) -> bytes | memoryview:
        """The whole document of a page read in one chunk (head, rows, tail)."""
        ...


def encoder(fmt: Format, info: PageInfo, scales: Scales) -> CandleEncoder:
    if fmt is Format.CSV:
        return CsvCandles(info)
    return ready_encoder(fmt, info, scales)


def ready_encoder(fmt: Format, info: PageInfo, scales: Scales) -> ReadyEncoder:
    if fmt is Format.JSON:
        return JsonCandles(info)
    if fmt is Format.ARROW:
        return ArrowCandles(info, scales)
    if fmt is Format.PARQUET:
        return ParquetCandles(info, scales)
    raise ValueError(f"{fmt} pages are not written from a ready form")


def media_type(fmt: Format) -> str:
    return MEDIA_TYPES[fmt]


def record(candle: Candle) -> tuple[Any, ...]:
    """A candle's values after instrument and interval, in :data:`CANDLE_FIELDS` order:
    decimals as exact text, the open time as ISO 8601 (from
    :func:`storage.candle_rows.candle_record`)."""
    return msgspec.structs.astuple(candle_record(candle))[2:]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class JsonCandles:
    """``{"instrument": ..., "next": ..., "candles": [{...}, ...]}``; every candle object is
    :func:`storage.candle_rows.candle_json`'s, stored ones joined by the database."""

    format = Format.JSON
    form = ReadyForm.JSON

    def __init__(self, info: PageInfo) -> None:
        self._info = info
        self._first = True

    def head(self) -> bytes:
        info = self._info
        envelope = {
            "instrument": info.instrument,
            "interval": info.interval,
            "rolled_up_from": info.rolled_up_from,
            "start": iso_utc(info.start),
            "end": iso_utc(info.end),
            "next_cursor": info.next_cursor,
            "next": info.next_url,
        }
        return msgspec.json.encode(envelope)[:-1] + b',"candles":['

    def stored(self, body: bytes) -> bytes:
        if not body:
            return b""
        if self._first:
            self._first = False
            return body
        return b"," + body

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self.stored(b",".join([candle_json(c) for c in candles]))

    def tail(self) -> bytes:
        return b"]}"

    def whole(self, body: bytes) -> bytes:
        return b"".join([self.head(), self.stored(body), self.tail()])


class CsvCandles:
    """A header row, then one row per candle (``\\n`` line ends, no quoting needed)."""

    format = Format.CSV

    def __init__(self, info: PageInfo) -> None:
        self._prefix = f"{info.instrument},{info.interval},"

    def head(self) -> bytes:
        return (",".join(CANDLE_FIELDS) + "\n").encode()

    def rows(self, rows: Sequence[CandleText]) -> bytes:
        """Stored candles read as texts. Candles open at whole seconds: their times are
        written for the whole chunk at once (else one by one)."""
        if not rows:
            return b""
        ns = np.array([r[0] for r in rows], dtype=np.int64)
        if (ns % NS_PER_SECOND).any():
            iso = [iso_utc(int(t)) for t in ns]
        else:
            whole = np.datetime_as_string(ns.astype("datetime64[ns]"), unit="s")
            iso = [f"{t}Z" for t in whole.tolist()]
        return self._lines([f"{t},{','.join(r[1:])}" for t, r in zip(iso, rows, strict=True)])

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self._lines([",".join(map(_text, record(c))) for c in candles])

    def _lines(self, lines: Sequence[str]) -> bytes:
        prefix = self._prefix
        return "".join([f"{prefix}{line}\n" for line in lines]).encode()

    def tail(self) -> bytes:
        return b""


def arrow_schema(scales: Scales) -> pa.Schema:
    fields = []
    for name in CANDLE_FIELDS:
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
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


class _ArrowBatches:
    """Packed rows (:mod:`charting.packed`) or candles to Arrow record batches."""

    form = ReadyForm.PACKED

    def __init__(self, info: PageInfo, scales: Scales) -> None:
        self._info = info
        self.schema = arrow_schema(scales)

    def stored_batch(self, body: bytes) -> pa.RecordBatch:
        info = self._info
        return packed_batch(packed_rows(body), self.schema, info.instrument, info.interval)

    def candle_batch(self, candles: Sequence[Candle]) -> pa.RecordBatch:
        info = self._info
        rows = pack_candles(candles)
        if rows is None:  # a value beyond 64 bits
            return decimal_batch(candles, self.schema, info.instrument, info.interval)
        return packed_batch(rows, self.schema, info.instrument, info.interval)


class ArrowCandles(_ArrowBatches):
    """The Arrow IPC stream format: the schema, a record batch per chunk, end of stream.

    Each is one encapsulated IPC message, as serialised by Arrow itself: the same bytes a
    stream writer gives, without copying them through a Python file."""

    format = Format.ARROW

    def head(self) -> bytes:
        return bytes(self.schema.serialize().to_pybytes())

    def stored(self, body: bytes) -> bytes:
        return self._message(self.stored_batch(body)) if body else b""

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self._message(self.candle_batch(candles)) if candles else b""

    def tail(self) -> bytes:
        return _END_OF_STREAM

    def whole(self, body: bytes) -> memoryview:
        """Written straight into one buffer of the stream's exact size: a page is megabytes,
        and each fresh megabyte copied costs page faults as well as the copy."""
        schema = self.schema.serialize()
        if not body:
            return memoryview(b"".join([schema.to_pybytes(), _END_OF_STREAM]))
        batch = self.stored_batch(body)
        size = schema.size + pa.ipc.get_record_batch_size(batch) + len(_END_OF_STREAM)
        buffer = pa.allocate_buffer(size)
        with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buffer), self.schema) as stream:
            stream.write_batch(batch)
        return memoryview(buffer)

    @staticmethod
    def _message(batch: pa.RecordBatch) -> bytes:
        return bytes(batch.serialize().to_pybytes())


_END_OF_STREAM: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"
"""The IPC stream's end: a continuation marker and a zero length."""


class ParquetCandles(_ArrowBatches):
    """Parquet, a row group per chunk, each sent on as soon as it is written."""

    format = Format.PARQUET

    def __init__(self, info: PageInfo, scales: Scales) -> None:
        super().__init__(info, scales)
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

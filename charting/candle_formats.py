"""Candle pages in each format, written a chunk at a time.

Every format carries the columns of :data:`core.tables.CANDLE_COLUMNS` (the layout of
``mdp candles``' CSV, JSON lines and Parquet) followed by ``status`` and ``revision``. Decimals
stay exact: text in JSON and CSV, ``decimal128`` in Arrow and Parquet (each column at the
finest scale of the page), open times as ISO 8601 UTC text or ``timestamp[ns, UTC]``.

Stored candles arrive as database rows already in the shape the encoder wants (its
``columns``, see :mod:`charting.database`); rolled-up candles arrive as :class:`Candle` s and
are turned into the same shapes here, so that both paths give identical bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, LiteralString, Protocol

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from charting import database
from charting.formats import MEDIA_TYPES, Format
from core.candles import Candle
from core.numbers import format_fixed
from core.tables import CANDLE_COLUMNS, iso_utc

CANDLE_FIELDS: Final = (*CANDLE_COLUMNS, "status", "revision")
"""The columns of every candle response, in order."""
_DECIMALS: Final = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "vwap",
    "taker_buy_volume",
)
_PRECISION: Final = 38
_NS: Final = 1_000_000_000


class CandleRecord(msgspec.Struct):
    """One candle in JSON: :data:`CANDLE_FIELDS`, decimals as strings."""

    instrument: str
    interval: str
    open_time: str
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    vwap: str
    taker_buy_volume: str
    first_trade_id: int | None
    last_trade_id: int | None
    status: str
    revision: int


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
    columns: LiteralString
    """The row shape this encoder reads from the database (see :mod:`charting.database`)."""

    def head(self) -> bytes: ...

    def rows(self, rows: Sequence[database.Row]) -> bytes: ...

    def candles(self, candles: Sequence[Candle]) -> bytes: ...

    def tail(self) -> bytes: ...


def encoder(fmt: Format, info: PageInfo, scales: Scales) -> CandleEncoder:
    if fmt is Format.JSON:
        return JsonCandles(info)
    if fmt is Format.CSV:
        return CsvCandles(info)
    if fmt is Format.ARROW:
        return ArrowCandles(info, scales)
    return ParquetCandles(info, scales)


def media_type(fmt: Format) -> str:
    return MEDIA_TYPES[fmt]


def record(candle: Candle) -> tuple[Any, ...]:
    """A candle's values after instrument and interval, in :data:`CANDLE_FIELDS` order:
    decimals as exact text, the open time as ISO 8601."""
    ps, ss = candle.price_scale, candle.size_scale
    return (
        iso_utc(candle.open_time),
        format_fixed(candle.open_raw, ps),
        format_fixed(candle.high_raw, ps),
        format_fixed(candle.low_raw, ps),
        format_fixed(candle.close_raw, ps),
        format_fixed(candle.volume_raw, ss),
        format_fixed(candle.quote_volume_raw, ps + ss),
        candle.trades,
        format_fixed(candle.vwap_raw, candle.vwap_scale),
        format_fixed(candle.taker_buy_volume_raw, ss),
        candle.first_trade_id,
        candle.last_trade_id,
        candle.status.value,
        candle.revision,
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)


class JsonCandles:
    """``{"instrument": ..., "next": ..., "candles": [{...}, ...]}``; stored candles come as
    JSON objects written by the database (:data:`database.JSON_OBJECT`)."""

    format = Format.JSON
    columns: LiteralString = database.JSON_OBJECT

    def __init__(self, info: PageInfo) -> None:
        self._info = info
        self._encode = msgspec.json.Encoder().encode
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
        return self._encode(envelope)[:-1] + b',"candles":['

    def rows(self, rows: Sequence[database.Row]) -> bytes:
        if not rows:
            return b""
        return self._separated(",".join([row[0] for row in rows]).encode())

    def candles(self, candles: Sequence[Candle]) -> bytes:
        if not candles:
            return b""
        instrument, interval = self._info.instrument, self._info.interval
        records = [CandleRecord(instrument, interval, *record(c)) for c in candles]
        return self._separated(self._encode(records)[1:-1])

    def _separated(self, body: bytes) -> bytes:
        if self._first:
            self._first = False
            return body
        return b"," + body

    def tail(self) -> bytes:
        return b"]}"


class CsvCandles:
    """A header row, then one row per candle (``\\n`` line ends, no quoting needed)."""

    format = Format.CSV
    columns: LiteralString = database.CSV_LINE

    def __init__(self, info: PageInfo) -> None:
        self._prefix = f"{info.instrument},{info.interval},"

    def head(self) -> bytes:
        return (",".join(CANDLE_FIELDS) + "\n").encode()

    def rows(self, rows: Sequence[database.Row]) -> bytes:
        if not rows:
            return b""
        prefix = self._prefix
        return ("".join([f"{prefix}{row[0]}\n" for row in rows])).encode()

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self.rows([(",".join(map(_text, record(c))),) for c in candles])

    def tail(self) -> bytes:
        return b""


def arrow_schema(scales: Scales) -> pa.Schema:
    fields = []
    for name in CANDLE_FIELDS:
        if name in ("instrument", "interval", "status"):
            kind = pa.string()
        elif name == "open_time":
            kind = pa.timestamp("ns", tz="UTC")
        elif name in _DECIMALS:
            kind = pa.decimal128(_PRECISION, scales.of_column(name))
        else:
            kind = pa.int64()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


_LINE_FIELDS: Final = tuple(
    name for name in CANDLE_FIELDS if name not in ("instrument", "interval")
)


class _ArrowBatches:
    """Database lines (:data:`database.ARROW_LINE`) or candles to Arrow record batches."""

    columns: LiteralString = database.ARROW_LINE

    def __init__(self, info: PageInfo, scales: Scales) -> None:
        self._info = info
        self.schema = arrow_schema(scales)
        types = {name: self.schema.field(name).type for name in _LINE_FIELDS}
        types["open_time"] = pa.int64()
        self._read = pa_csv.ReadOptions(column_names=list(_LINE_FIELDS), use_threads=False)
        self._parse = pa_csv.ParseOptions(quote_char=False, double_quote=False)
        self._convert = pa_csv.ConvertOptions(
            column_types=types, null_values=[""], strings_can_be_null=False
        )

    def batch(self, rows: Sequence[database.Row]) -> pa.RecordBatch:
        data = ("\n".join([row[0] for row in rows]) + "\n").encode()
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=self._read,
            parse_options=self._parse,
            convert_options=self._convert,
        )
        n = table.num_rows
        seconds = table.column("open_time").combine_chunks()
        arrays = {
            "instrument": pa.repeat(self._info.instrument, n).cast(pa.string()),
            "interval": pa.repeat(self._info.interval, n).cast(pa.string()),
            "open_time": pc.multiply(seconds, _NS).cast(self.schema.field("open_time").type),
        }
        columns = [
            arrays[name] if name in arrays else table.column(name).combine_chunks()
            for name in CANDLE_FIELDS
        ]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def candle_lines(self, candles: Sequence[Candle]) -> list[database.Row]:
        return [(_arrow_line(c),) for c in candles]


def _arrow_line(candle: Candle) -> str:
    fields = record(candle)
    return ",".join([str(candle.open_time // _NS), *map(_text, fields[1:])])


class ArrowCandles(_ArrowBatches):
    """The Arrow IPC stream format: the schema, a record batch per chunk, end of stream."""

    format = Format.ARROW

    def __init__(self, info: PageInfo, scales: Scales) -> None:
        super().__init__(info, scales)
        self._out = Drain()
        self._writer = pa.ipc.new_stream(self._out, self.schema)

    def head(self) -> bytes:
        return self._out.take()

    def rows(self, rows: Sequence[database.Row]) -> bytes:
        if rows:
            self._writer.write_batch(self.batch(rows))
        return self._out.take()

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self.rows(self.candle_lines(candles))

    def tail(self) -> bytes:
        self._writer.close()
        return self._out.take()


class ParquetCandles(_ArrowBatches):
    """Parquet, a row group per chunk, each sent on as soon as it is written."""

    format = Format.PARQUET

    def __init__(self, info: PageInfo, scales: Scales) -> None:
        super().__init__(info, scales)
        self._out = Drain()
        self._writer = pq.ParquetWriter(self._out, self.schema, compression="zstd")

    def head(self) -> bytes:
        return self._out.take()

    def rows(self, rows: Sequence[database.Row]) -> bytes:
        if rows:
            self._writer.write_batch(self.batch(rows))
        return self._out.take()

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return self.rows(self.candle_lines(candles))

    def tail(self) -> bytes:
        self._writer.close()
        return self._out.take()


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

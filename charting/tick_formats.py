"""Tick pages in each format: :data:`TICK_FIELDS`, prices and sizes exact.

Times are ISO 8601 UTC text with nanoseconds in JSON and CSV, ``timestamp[ns, UTC]`` in
Arrow and Parquet; ``side`` is the aggressor (``buy``, ``sell`` or ``unknown``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from charting.formats import Format
from core.present.live import SIDES
from core.present.parquet_file import Drain
from core.present.text import iso_utc
from storage.reads import TickRow

TICK_FIELDS: Final = (
    "instrument",
    "trade_id",
    "price",
    "size",
    "side",
    "ts_event",
    "ts_recv",
    "trades",
)
_PRECISION: Final = 38


class TickRecord(msgspec.Struct):
    instrument: str
    trade_id: int
    price: str
    size: str
    side: str
    ts_event: str
    ts_recv: str
    trades: int


class TickEncoder(Protocol):
    format: Format

    def head(self) -> bytes: ...

    def rows(self, rows: Sequence[TickRow]) -> bytes: ...

    def tail(self) -> bytes: ...


def tick_encoder(
    fmt: Format,
    instrument: str,
    envelope: dict[str, object],
    price_scale: int,
    size_scale: int,
) -> TickEncoder:
    if fmt is Format.JSON:
        return JsonTicks(instrument, envelope)
    if fmt is Format.CSV:
        return CsvTicks(instrument)
    return BinaryTicks(instrument, fmt, price_scale, size_scale)


def _records(instrument: str, rows: Sequence[TickRow]) -> list[TickRecord]:
    return [
        TickRecord(
            instrument, trade_id, price, size, SIDES[side], iso_utc(ts), iso_utc(recv), trades
        )
        for ts, trade_id, price, size, side, recv, trades in rows
    ]


class JsonTicks:
    format = Format.JSON

    def __init__(self, instrument: str, envelope: dict[str, object]) -> None:
        self._instrument = instrument
        self._envelope = envelope
        self._encode = msgspec.json.Encoder().encode
        self._first = True

    def head(self) -> bytes:
        return self._encode(self._envelope)[:-1] + b',"ticks":['

    def rows(self, rows: Sequence[TickRow]) -> bytes:
        if not rows:
            return b""
        body = self._encode(_records(self._instrument, rows))[1:-1]
        if self._first:
            self._first = False
            return body
        return b"," + body

    def tail(self) -> bytes:
        return b"]}"


class CsvTicks:
    format = Format.CSV

    def __init__(self, instrument: str) -> None:
        self._instrument = instrument

    def head(self) -> bytes:
        return (",".join(TICK_FIELDS) + "\n").encode()

    def rows(self, rows: Sequence[TickRow]) -> bytes:
        lines = [
            f"{r.instrument},{r.trade_id},{r.price},{r.size},{r.side},{r.ts_event},{r.ts_recv},"
            f"{r.trades}\n"
            for r in _records(self._instrument, rows)
        ]
        return "".join(lines).encode()

    def tail(self) -> bytes:
        return b""


def tick_schema(price_scale: int, size_scale: int) -> pa.Schema:
    stamp = pa.timestamp("ns", tz="UTC")
    return pa.schema(
        [
            pa.field("instrument", pa.string()),
            pa.field("trade_id", pa.int64()),
            pa.field("price", pa.decimal128(_PRECISION, price_scale)),
            pa.field("size", pa.decimal128(_PRECISION, size_scale)),
            pa.field("side", pa.string()),
            pa.field("ts_event", stamp),
            pa.field("ts_recv", stamp),
            pa.field("trades", pa.int64()),
        ]
    )


class BinaryTicks:
    """Arrow IPC stream or Parquet: a record batch (a row group) per chunk."""

    def __init__(self, instrument: str, fmt: Format, price_scale: int, size_scale: int) -> None:
        self.format = fmt
        self._instrument = instrument
        self.schema = tick_schema(price_scale, size_scale)
        self._out = Drain()
        if fmt is Format.ARROW:
            self._writer: pa.ipc.RecordBatchStreamWriter | pq.ParquetWriter = pa.ipc.new_stream(
                self._out, self.schema
            )
        else:
            self._writer = pq.ParquetWriter(self._out, self.schema, compression="zstd")

    def head(self) -> bytes:
        return self._out.take()

    def rows(self, rows: Sequence[TickRow]) -> bytes:
        if rows:
            self._writer.write_batch(self._batch(rows))
        return self._out.take()

    def tail(self) -> bytes:
        self._writer.close()
        return self._out.take()

    def _batch(self, rows: Sequence[TickRow]) -> pa.RecordBatch:
        ts, trade_id, price, size, side, recv, trades = zip(*rows, strict=True)
        schema = self.schema
        stamp = schema.field("ts_event").type
        columns = [
            pa.repeat(self._instrument, len(rows)).cast(pa.string()),
            pa.array(trade_id, pa.int64()),
            pc.cast(pa.array(price, pa.string()), schema.field("price").type),
            pc.cast(pa.array(size, pa.string()), schema.field("size").type),
            pa.array([SIDES[s] for s in side], pa.string()),
            pa.array(ts, pa.int64()).cast(stamp),
            pa.array(recv, pa.int64()).cast(stamp),
            pa.array(trades, pa.int64()),
        ]
        return pa.RecordBatch.from_arrays(columns, schema=schema)

"""A candle's values as text: exact decimals from the fixed-point integers, ISO 8601 times.

Every text form of a candle starts here: the history API's record (its JSON object, its CSV
line, the ``json`` column storage keeps beside each row), the table rows of ``mdp candles``
and the WebSocket wire's candle object. Decimals come from the scaled integers and their
scales through :func:`~core.numbers.format_fixed`, never through a binary float, and keep
their trailing zeros: one column prints with one scale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from core.candles import Candle
from core.numbers import format_fixed

CANDLE_COLUMNS: Final = (
    "instrument",
    "interval",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "vwap",
    "taker_buy_volume",
    "first_trade_id",
    "last_trade_id",
)
"""The table columns of a candle (``mdp candles``' CSV and Parquet have exactly these)."""

CANDLE_FIELDS: Final = (*CANDLE_COLUMNS, "status", "revision", "gap")
"""Every field of a candle as the platform shows it, in order: the table columns, then
``status``, ``revision`` and ``gap`` (the candle overlaps a feed gap). A document carries
these or a subset of them, always in this order."""

DECIMAL_FIELDS: Final = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "vwap",
    "taker_buy_volume",
)


def iso_utc(ts_ns: int) -> str:
    """``2025-11-10T17:24:00Z``; fractions of a second appear only when there are any."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


class CandleRecord(msgspec.Struct):
    """A candle with its values as the platform shows them, in :data:`CANDLE_FIELDS` order:
    decimals as exact text, the open time as ISO 8601. ``gap`` is last, so that the stored
    JSON of rows written before it (storage migration 0005) got it appended."""

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
    gap: bool


def candle_record(candle: Candle) -> CandleRecord:
    """The one place a candle's values become text."""
    ps, ss = candle.price_scale, candle.size_scale
    return CandleRecord(
        instrument=candle.instrument,
        interval=candle.interval.label,
        open_time=iso_utc(candle.open_time),
        open=format_fixed(candle.open_raw, ps),
        high=format_fixed(candle.high_raw, ps),
        low=format_fixed(candle.low_raw, ps),
        close=format_fixed(candle.close_raw, ps),
        volume=format_fixed(candle.volume_raw, ss),
        quote_volume=format_fixed(candle.quote_volume_raw, ps + ss),
        trades=candle.trades,
        vwap=format_fixed(candle.vwap_raw, candle.vwap_scale),
        taker_buy_volume=format_fixed(candle.taker_buy_volume_raw, ss),
        first_trade_id=candle.first_trade_id,
        last_trade_id=candle.last_trade_id,
        status=candle.status.value,
        revision=candle.revision,
        gap=candle.gap,
    )


encode_json: Final = msgspec.json.Encoder().encode


def candle_json(candle: Candle) -> bytes:
    """:func:`candle_record` as a compact JSON object (the history API's candle)."""
    return encode_json(candle_record(candle))


_decode_records: Final = msgspec.json.Decoder(list[CandleRecord]).decode


def json_records(body: bytes) -> list[CandleRecord]:
    """The records of :func:`candle_json` objects joined by commas: the JSON ready form of a
    page of stored candles (:class:`~core.present.document.ReadForm`), read back without a
    :class:`Candle`."""
    return _decode_records(b"[" + body + b"]")


def record_values(candle: Candle) -> tuple[Any, ...]:
    """The candle's values in :data:`CANDLE_FIELDS` order (those of :func:`candle_record`)."""
    return msgspec.structs.astuple(candle_record(candle))


def value_text(value: object) -> str:
    """A value of :func:`record_values` as a CSV field: none is empty, a bool is ``true`` or
    ``false`` (as PostgreSQL's ``bool::text``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def csv_line(candle: Candle) -> str:
    """The history API's CSV line of a candle (all of :data:`CANDLE_FIELDS`, ``\\n`` ended).

    It is byte for byte the line the database wrote from a stored row before CSV pages
    moved here (``tests/charting/test_present_csv.py`` holds both to it on real trades):
    NUMERIC keeps the scale each value was stored at, which is the candle's own.
    """
    return record_csv_line(candle_record(candle))


def record_csv_line(r: CandleRecord) -> str:
    """:func:`csv_line` of a candle's record."""
    return (
        f"{r.instrument},{r.interval},{r.open_time},{r.open},{r.high},{r.low},{r.close},"
        f"{r.volume},{r.quote_volume},{r.trades},{r.vwap},{r.taker_buy_volume},"
        f"{value_text(r.first_trade_id)},{value_text(r.last_trade_id)},{r.status},"
        f"{r.revision},{value_text(r.gap)}\n"
    )


def json_objects(fields: tuple[str, ...]) -> Callable[[Candle], bytes]:
    """The JSON object of a candle with ``fields`` (in :data:`CANDLE_FIELDS` order)."""
    if fields == CANDLE_FIELDS:
        return candle_json
    types = {field.name: field.type for field in msgspec.structs.fields(CandleRecord)}
    subset = msgspec.defstruct("CandleSubset", [(name, types[name]) for name in fields])
    pick = _picker(fields)

    def encode(candle: Candle) -> bytes:
        return encode_json(subset(*pick(record_values(candle))))

    return encode


def csv_lines(fields: tuple[str, ...]) -> Callable[[Candle], str]:
    """The CSV line of a candle with ``fields`` (:func:`record_csv_lines`)."""
    if fields == CANDLE_FIELDS:
        return csv_line
    line = record_csv_lines(fields)
    return lambda candle: line(candle_record(candle))


def record_csv_lines(fields: tuple[str, ...]) -> Callable[[CandleRecord], str]:
    """The CSV line of a candle's record with ``fields`` (no field of a candle needs quoting:
    instrument ids, labels, numbers, times and statuses hold no comma, quote or newline)."""
    if fields == CANDLE_FIELDS:
        return record_csv_line
    if fields == CANDLE_FIELDS[: len(fields)]:  # the first fields: the full line, cut
        count = len(fields)

        def first(record: CandleRecord) -> str:
            return ",".join(record_csv_line(record).split(",", count)[:count]) + "\n"

        return first
    pick = _picker(fields)

    def line(record: CandleRecord) -> str:
        values = pick(msgspec.structs.astuple(record))
        return ",".join([value_text(v) for v in values]) + "\n"

    return line


def _picker(fields: tuple[str, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """The values of ``fields`` out of :func:`record_values`' tuple."""
    index = [CANDLE_FIELDS.index(name) for name in fields]
    return lambda values: tuple([values[i] for i in index])

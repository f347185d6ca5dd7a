"""Candles as table rows: the one column layout shared by CSV, JSON lines and Parquet output.

Numbers leave as exact decimal text (CSV, JSON) or as Arrow ``decimal128`` (Parquet); times as
ISO 8601 UTC text or Arrow timestamps. Nothing here goes through a binary float.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

from core.candles import Candle
from core.numbers import format_fixed, rescale

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
"""The column order of every candle table the platform writes."""

_PRICE_COLUMNS: Final = ("open", "high", "low", "close")
_DECIMAL_PRECISION: Final = 38


def iso_utc(ts_ns: int) -> str:
    """``2025-11-10T17:24:00Z``; fractions of a second appear only when there are any."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def csv_row(candle: Candle) -> list[str]:
    """One CSV row in :data:`CANDLE_COLUMNS` order; empty trade ids for flat candles."""
    ps, ss = candle.price_scale, candle.size_scale
    return [
        candle.instrument,
        candle.interval.label,
        iso_utc(candle.open_time),
        format_fixed(candle.open_raw, ps),
        format_fixed(candle.high_raw, ps),
        format_fixed(candle.low_raw, ps),
        format_fixed(candle.close_raw, ps),
        format_fixed(candle.volume_raw, ss),
        format_fixed(candle.quote_volume_raw, ps + ss),
        str(candle.trades),
        format_fixed(candle.vwap_raw, candle.vwap_scale),
        format_fixed(candle.taker_buy_volume_raw, ss),
        "" if candle.first_trade_id is None else str(candle.first_trade_id),
        "" if candle.last_trade_id is None else str(candle.last_trade_id),
    ]


def json_record(candle: Candle) -> dict[str, Any]:
    """A JSON object: the table columns (decimals as strings), then status and revision."""
    record: dict[str, Any] = dict(zip(CANDLE_COLUMNS, csv_row(candle), strict=True))
    record["trades"] = candle.trades
    record["first_trade_id"] = candle.first_trade_id
    record["last_trade_id"] = candle.last_trade_id
    record["status"] = candle.status.value
    record["revision"] = candle.revision
    return record


def arrow_table(candles: Sequence[Candle]) -> pa.Table:
    """An Arrow table of candles; each decimal column takes the finest scale among the rows."""
    price_scale = max((c.price_scale for c in candles), default=0)
    size_scale = max((c.size_scale for c in candles), default=0)
    vwap_scale = max((c.vwap_scale for c in candles), default=0)
    quote_scale = price_scale + size_scale

    def decimals(raws: list[tuple[int, int]], scale: int) -> pa.Array:
        values = [Decimal(rescale(raw, own, scale)).scaleb(-scale) for raw, own in raws]
        return pa.array(values, pa.decimal128(_DECIMAL_PRECISION, scale))

    columns: dict[str, pa.Array] = {
        "instrument": pa.array([c.instrument for c in candles], pa.string()),
        "interval": pa.array([c.interval.label for c in candles], pa.string()),
        "open_time": pa.array([c.open_time for c in candles], pa.timestamp("ns", tz="UTC")),
    }
    for name in _PRICE_COLUMNS:
        raws = [(getattr(c, f"{name}_raw"), c.price_scale) for c in candles]
        columns[name] = decimals(raws, price_scale)
    columns["volume"] = decimals([(c.volume_raw, c.size_scale) for c in candles], size_scale)
    columns["quote_volume"] = decimals(
        [(c.quote_volume_raw, c.price_scale + c.size_scale) for c in candles], quote_scale
    )
    columns["trades"] = pa.array([c.trades for c in candles], pa.int64())
    columns["vwap"] = decimals([(c.vwap_raw, c.vwap_scale) for c in candles], vwap_scale)
    columns["taker_buy_volume"] = decimals(
        [(c.taker_buy_volume_raw, c.size_scale) for c in candles], size_scale
    )
    columns["first_trade_id"] = pa.array([c.first_trade_id for c in candles], pa.int64())
    columns["last_trade_id"] = pa.array([c.last_trade_id for c in candles], pa.int64())
    assert tuple(columns) == CANDLE_COLUMNS
    return pa.table(columns)

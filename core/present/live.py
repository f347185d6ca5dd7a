"""Candles and ticks as the WebSocket protocol's objects (``docs/protocol.md``).

Decimals are exact strings from the scaled integers; times are integers: a candle's open
time in epoch milliseconds, a tick's event time in epoch nanoseconds.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from core.candles import Candle
from core.numbers import format_fixed
from core.ticks import TickBatch

NS_PER_MS: Final = 1_000_000
SIDES: Final = {-1: "sell", 0: "unknown", 1: "buy"}
"""A tick's aggressor side by its code."""

_encode: Final = msgspec.json.Encoder().encode


class LiveCandle(msgspec.Struct):
    instrument: str
    interval: str
    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    vwap: str
    taker_buy_volume: str
    trades: int
    first_trade_id: int | None
    last_trade_id: int | None
    revision: int
    status: Literal["open", "closed", "revised"]
    gap: bool


def live_candle_json(candle: Candle) -> bytes:
    """The protocol's CANDLE object: exact decimal strings, open time in epoch ms, and
    ``gap``: whether trades may be missing from it (its interval overlaps a feed gap)."""
    ps, ss = candle.price_scale, candle.size_scale
    return _encode(
        LiveCandle(
            instrument=candle.instrument,
            interval=candle.interval.label,
            open_time=candle.open_time // NS_PER_MS,
            open=format_fixed(candle.open_raw, ps),
            high=format_fixed(candle.high_raw, ps),
            low=format_fixed(candle.low_raw, ps),
            close=format_fixed(candle.close_raw, ps),
            volume=format_fixed(candle.volume_raw, ss),
            quote_volume=format_fixed(candle.quote_volume_raw, ps + ss),
            vwap=format_fixed(candle.vwap_raw, candle.vwap_scale),
            taker_buy_volume=format_fixed(candle.taker_buy_volume_raw, ss),
            trades=candle.trades,
            first_trade_id=candle.first_trade_id,
            last_trade_id=candle.last_trade_id,
            revision=candle.revision,
            status=candle.status.value,
            gap=candle.gap,
        )
    )


class LiveTick(msgspec.Struct):
    trade_id: int
    price: str
    size: str
    side: str
    ts_event: int


def live_tick_json(batch: TickBatch, start: int, stop: int) -> list[bytes]:
    """Rows ``start:stop`` of a batch as the protocol's tick objects, one item per tick."""
    ps, ss = batch.price_scale, batch.size_scale
    rows = zip(
        batch.trade_id[start:stop].tolist(),
        batch.price[start:stop].tolist(),
        batch.size[start:stop].tolist(),
        batch.side[start:stop].tolist(),
        batch.ts_event[start:stop].tolist(),
        strict=True,
    )
    return [
        _encode(
            LiveTick(trade_id, format_fixed(price, ps), format_fixed(size, ss), SIDES[side], ts)
        )
        for trade_id, price, size, side, ts in rows
    ]

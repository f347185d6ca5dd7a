"""Ticks, batches and candles for storage tests, built from short decimal text."""

from __future__ import annotations

from decimal import Decimal

from core.candles import Candle, CandleStatus
from core.gaps import FeedGap, GapReason
from core.intervals import Interval
from core.numbers import to_raw
from core.ticks import Side, Tick, TickBatch

SECOND = 1_000_000_000
T0 = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z
MINUTE = Interval.parse("1m")


def tick(
    trade_id: int,
    ns: int,
    price: str = "100.50",
    size: str = "0.125",
    side: Side = Side.BUY,
    instrument: str = "TEST:BTCUSD",
) -> Tick:
    """A tick ``ns`` nanoseconds after :data:`T0`, received 1 ms later."""
    return Tick(instrument, trade_id, Decimal(price), Decimal(size), side, T0 + ns, T0 + ns + 10**6)


def batch(*ticks: Tick, price_scale: int | None = None, size_scale: int | None = None) -> TickBatch:
    """A batch of ``ticks``, at given scales (default: the finest the ticks need)."""
    built = TickBatch.from_ticks(list(ticks))
    return built.with_scales(
        built.price_scale if price_scale is None else price_scale,
        built.size_scale if size_scale is None else size_scale,
    )


def candle(
    minute: int,
    revision: int = 0,
    close: str = "101.25",
    instrument: str = "TEST:BTCUSD",
    status: CandleStatus = CandleStatus.CLOSED,
    interval: Interval = MINUTE,
) -> Candle:
    """A bar ``minute`` intervals after :data:`T0`: open 100.50, high/low around the close."""
    open_, close_ = Decimal("100.50"), Decimal(close)
    price_scale, size_scale = 2, 3
    high = max(open_, close_) + Decimal("0.75")
    low = min(open_, close_) - Decimal("0.25")
    volume, buy = Decimal("3.250"), Decimal("1.125")
    quote = Decimal("327.165")  # any exact value at price_scale + size_scale places
    return Candle(
        instrument=instrument,
        interval=interval,
        open_time=T0 + minute * interval.ns,
        price_scale=price_scale,
        size_scale=size_scale,
        open_raw=to_raw(open_, price_scale),
        high_raw=to_raw(high, price_scale),
        low_raw=to_raw(low, price_scale),
        close_raw=to_raw(close_, price_scale),
        volume_raw=to_raw(volume, size_scale),
        quote_volume_raw=to_raw(quote, price_scale + size_scale),
        taker_buy_volume_raw=to_raw(buy, size_scale),
        trades=7,
        first_trade_id=1000 + minute * 10,
        last_trade_id=1006 + minute * 10,
        revision=revision,
        status=status,
    )


def gap(
    start: int,
    end: int,
    reason: GapReason = GapReason.DISCONNECTED,
    instrument: str = "TEST:BTCUSD",
    detail: str = "connection reset by peer",
    noticed: int | None = None,
) -> FeedGap:
    """A feed gap from ``start`` to ``end`` nanoseconds after :data:`T0`, noticed (by
    default) 1 ms after its end; ``noticed=0``: the connector did not say."""
    ts_recv = T0 + end + 10**6 if noticed is None else noticed
    return FeedGap(
        instrument=instrument,
        start_ns=T0 + start,
        end_ns=T0 + end,
        reason=reason,
        detail=detail,
        ts_recv=ts_recv,
    )

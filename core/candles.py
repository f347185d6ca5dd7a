"""Candles (OHLCV bars) as the engine emits them."""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec

from core.intervals import Interval
from core.numbers import divide_rounded, pow10, to_decimal

VWAP_EXTRA_PLACES = 4
"""VWAP is a quotient: it is rounded half-even to the price scale plus these places."""


class CandleStatus(enum.StrEnum):
    """``open`` while forming, ``closed`` once final, ``revised`` when changed after closing."""

    OPEN = "open"
    CLOSED = "closed"
    REVISED = "revised"


class Candle(msgspec.Struct, frozen=True):
    """One OHLCV bar of one instrument and interval.

    Prices and sizes are fixed point (see :mod:`core.numbers`): ``open_raw`` is the open price
    times ``10**price_scale``, ``volume_raw`` the volume times ``10**size_scale`` and
    ``quote_volume_raw`` the notional times ``10**(price_scale + size_scale)``. The properties
    of the same names without ``_raw`` give exact :class:`Decimal` values.

    ``revision`` counts the versions of this bar emitted before this one, so a later version
    always has a higher revision. A bar without trades (an empty interval under the ``fill``
    rule) has ``trades == 0``, zero volume and no trade ids.

    ``gap`` is true when the candle's interval ``[open_time, close_time)`` overlaps a feed gap
    (:class:`core.gaps.FeedGap`): trades may be missing from it, so a quiet or empty candle
    there means "the feed was down", not "nothing traded". It is the last field, with a
    default, so that positional construction written before it keeps working.
    """

    instrument: str
    interval: Interval
    open_time: int
    price_scale: int
    size_scale: int
    open_raw: int
    high_raw: int
    low_raw: int
    close_raw: int
    volume_raw: int
    quote_volume_raw: int
    taker_buy_volume_raw: int
    trades: int
    first_trade_id: int | None
    last_trade_id: int | None
    revision: int
    status: CandleStatus
    gap: bool = False

    def __post_init__(self) -> None:
        low, high = self.low_raw, self.high_raw
        if not (low <= self.open_raw <= high and low <= self.close_raw <= high):
            raise ValueError("candle open and close must lie between low and high")
        if low <= 0:
            raise ValueError("candle prices must be positive")
        if not 0 <= self.taker_buy_volume_raw <= self.volume_raw:
            raise ValueError("taker-buy volume must be between 0 and the volume")
        if self.trades < 0 or self.revision < 0:
            raise ValueError("trades and revision must not be negative")
        if (self.trades == 0) != (self.volume_raw == 0):
            raise ValueError("a candle has volume exactly when it has trades")
        if self.open_time % self.interval.ns:
            raise ValueError("open_time must be aligned to the interval")

    @property
    def close_time(self) -> int:
        """End of the bucket (exclusive), UTC nanoseconds."""
        return self.open_time + self.interval.ns

    @property
    def open(self) -> Decimal:
        return to_decimal(self.open_raw, self.price_scale)

    @property
    def high(self) -> Decimal:
        return to_decimal(self.high_raw, self.price_scale)

    @property
    def low(self) -> Decimal:
        return to_decimal(self.low_raw, self.price_scale)

    @property
    def close(self) -> Decimal:
        return to_decimal(self.close_raw, self.price_scale)

    @property
    def volume(self) -> Decimal:
        return to_decimal(self.volume_raw, self.size_scale)

    @property
    def quote_volume(self) -> Decimal:
        return to_decimal(self.quote_volume_raw, self.price_scale + self.size_scale)

    @property
    def taker_buy_volume(self) -> Decimal:
        return to_decimal(self.taker_buy_volume_raw, self.size_scale)

    @property
    def vwap_scale(self) -> int:
        return self.price_scale + VWAP_EXTRA_PLACES

    @property
    def vwap_raw(self) -> int:
        """VWAP at :attr:`vwap_scale` places; 0 for a bar without trades (Kraken's rule)."""
        if self.volume_raw == 0:
            return 0
        numerator = self.quote_volume_raw * pow10(VWAP_EXTRA_PLACES)
        return divide_rounded(numerator, self.volume_raw)

    @property
    def vwap(self) -> Decimal:
        return to_decimal(self.vwap_raw, self.vwap_scale)

    @property
    def key(self) -> tuple[str, str, int]:
        """What identifies the bar across its revisions: instrument, interval, open time."""
        return (self.instrument, self.interval.label, self.open_time)

    def values(self) -> tuple[object, ...]:
        """Everything but revision and status, scale-independent: equal for equal bars.

        The gap flag is part of it: a flagged bar is not the same bar as an unflagged one.
        """
        return (
            self.instrument,
            self.interval.label,
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote_volume,
            self.taker_buy_volume,
            self.trades,
            self.first_trade_id,
            self.last_trade_id,
            self.gap,
        )

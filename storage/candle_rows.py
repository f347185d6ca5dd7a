"""Candles to and from rows of the ``candles`` table.

Numbers go in as exact decimal text from :func:`~core.numbers.format_fixed`, which keeps the
trailing zeros; NUMERIC keeps those decimal places, so the scales come back from the values
read: prices at ``price_scale``, volumes at ``size_scale``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.numbers import format_fixed, to_raw
from core.tables import iso_utc

CANDLE_COLUMNS: Final = (
    "instrument",
    "interval",
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "vwap",
    "taker_buy_volume",
    "trades",
    "first_trade_id",
    "last_trade_id",
    "revision",
    "status",
)
"""The columns :func:`candle_row` fills, in order (``updated_at`` is the database's)."""

READ_COLUMNS: Final = (
    "instrument, interval, open_time_ns, open, high, low, close, volume, quote_volume,"
    " taker_buy_volume, trades, first_trade_id, last_trade_id, revision, status"
)
"""What :func:`candle_from_row` reads (``open_time_ns`` is computed by the query)."""


def candle_row(candle: Candle) -> tuple[str | int | None, ...]:
    """One row in :data:`CANDLE_COLUMNS` order: decimals and times as text."""
    ps, ss = candle.price_scale, candle.size_scale
    return (
        candle.instrument,
        candle.interval.label,
        iso_utc(candle.open_time),
        iso_utc(candle.close_time),
        format_fixed(candle.open_raw, ps),
        format_fixed(candle.high_raw, ps),
        format_fixed(candle.low_raw, ps),
        format_fixed(candle.close_raw, ps),
        format_fixed(candle.volume_raw, ss),
        format_fixed(candle.quote_volume_raw, ps + ss),
        format_fixed(candle.vwap_raw, candle.vwap_scale),
        format_fixed(candle.taker_buy_volume_raw, ss),
        candle.trades,
        candle.first_trade_id,
        candle.last_trade_id,
        candle.revision,
        candle.status.value,
    )


def candle_copy_line(candle: Candle) -> str:
    """:func:`candle_row` as a line of text COPY (no value needs escaping: instrument ids,
    interval labels, numbers, times and statuses hold no tab, newline or backslash)."""
    return "\t".join("\\N" if v is None else str(v) for v in candle_row(candle)) + "\n"


def latest_revisions(candles: Iterable[Candle]) -> list[Candle]:
    """One candle per key, the highest revision (the later one on a tie), in first-seen order.

    An upsert statement may touch a row only once, so a write that carries two revisions of
    one candle keeps the newer here.
    """
    latest: dict[tuple[str, str, int], Candle] = {}
    for candle in candles:
        held = latest.get(candle.key)
        if held is None or candle.revision >= held.revision:
            latest[candle.key] = candle
    return list(latest.values())


def candle_from_row(row: Sequence[object], interval: Interval | None = None) -> Candle:
    """A :class:`Candle` from a row of :data:`READ_COLUMNS`."""
    (instrument, label, open_time, open_, high, low, close, volume, quote_volume, taker_buy,
     trades, first_id, last_id, revision, status) = row  # fmt: skip
    prices = [_decimal(v) for v in (open_, high, low, close)]
    sizes = [_decimal(v) for v in (volume, taker_buy)]
    price_scale = max(_places(p) for p in prices)
    size_scale = max(_places(s) for s in sizes)
    raw_prices = [to_raw(p, price_scale) for p in prices]
    return Candle(
        instrument=str(instrument),
        interval=interval if interval is not None else Interval.parse(str(label)),
        open_time=_int(open_time),
        price_scale=price_scale,
        size_scale=size_scale,
        open_raw=raw_prices[0],
        high_raw=raw_prices[1],
        low_raw=raw_prices[2],
        close_raw=raw_prices[3],
        volume_raw=to_raw(sizes[0], size_scale),
        quote_volume_raw=to_raw(_decimal(quote_volume), price_scale + size_scale),
        taker_buy_volume_raw=to_raw(sizes[1], size_scale),
        trades=_int(trades),
        first_trade_id=None if first_id is None else _int(first_id),
        last_trade_id=None if last_id is None else _int(last_id),
        revision=_int(revision),
        status=CandleStatus(str(status)),
    )


def _decimal(value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a NUMERIC value, got {value!r}")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int | Decimal):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)

"""Candles to and from rows of the ``candles`` table.

Numbers go in as exact decimal text from :func:`~core.numbers.format_fixed`, which keeps the
trailing zeros; NUMERIC keeps those decimal places, so the scales come back from the values
read: prices at ``price_scale``, volumes at ``size_scale``.

Beside the numerics each row keeps two read forms, written here at upsert time so that a
reader of a page does no per-value work (``docs/history-api.md`` says why and what it costs):

- ``json``: the candle as a JSON object (:func:`core.present.text.candle_json`), so that a
  JSON page is the database joining ready texts (and a CSV page those texts as lines);
- ``packed``: the candle's integers as :data:`~core.present.packed.PACKED_WORDS` big-endian
  64-bit words (:func:`core.present.packed.pack_candle`), so that a page of them is one
  buffer that numpy views as an array and Arrow columns are built from without Python per
  value. It is NULL when a value does not fit 64 bits; readers then take the numerics.

Both forms are :mod:`core.present`'s (readers take their names from there); storage only
keeps them.

Both are NULL in rows written by plain SQL or not yet filled; readers check and fall back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.numbers import to_raw
from core.present.packed import (
    pack_candle,
)
from core.present.text import candle_record, encode_json, iso_utc

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
    "price_scale",
    "size_scale",
    "packed",
    "json",
    "gap",
)
"""The columns :func:`candle_row` fills, in order (``updated_at`` is the database's)."""

READ_COLUMNS: Final = (
    "instrument, interval, open_time_ns, open, high, low, close, volume, quote_volume,"
    " taker_buy_volume, trades, first_trade_id, last_trade_id, revision, status, gap"
)
"""What :func:`candle_from_row` reads (``open_time_ns`` is computed by the query)."""


# -- rows -----------------------------------------------------------------------------------


def candle_row(candle: Candle) -> tuple[str | int | bytes | None, ...]:
    """One row in :data:`CANDLE_COLUMNS` order: decimals and times as text, ``packed`` as
    bytes, ``json`` as text, ``gap`` as a bool."""
    record = candle_record(candle)
    return (
        candle.instrument,
        record.interval,
        record.open_time,
        iso_utc(candle.close_time),
        record.open,
        record.high,
        record.low,
        record.close,
        record.volume,
        record.quote_volume,
        record.vwap,
        record.taker_buy_volume,
        candle.trades,
        candle.first_trade_id,
        candle.last_trade_id,
        candle.revision,
        record.status,
        candle.price_scale,
        candle.size_scale,
        pack_candle(candle),
        encode_json(record).decode(),
        candle.gap,
    )


def candle_copy_line(candle: Candle) -> str:
    """:func:`candle_row` as a line of text COPY, written out directly (the writer's hot
    path). ``packed`` goes as ``\\x`` hex, a missing value as ``\\N``. Only the JSON could
    hold a backslash (msgspec escapes control characters so): it is doubled there; instrument
    ids, labels, numbers, times and statuses hold no tab, newline or backslash."""
    r = candle_record(candle)
    packed = pack_candle(candle)
    json = encode_json(r).decode().replace("\\", "\\\\")
    packed_text = "\\N" if packed is None else "\\\\x" + packed.hex()
    return (
        f"{r.instrument}\t{r.interval}\t{r.open_time}\t{iso_utc(candle.close_time)}\t"
        f"{r.open}\t{r.high}\t{r.low}\t{r.close}\t{r.volume}\t{r.quote_volume}\t{r.vwap}\t"
        f"{r.taker_buy_volume}\t{r.trades}\t{_copy_int(r.first_trade_id)}\t"
        f"{_copy_int(r.last_trade_id)}\t{r.revision}\t{r.status}\t{candle.price_scale}\t"
        f"{candle.size_scale}\t{packed_text}\t{json}\t{'t' if candle.gap else 'f'}\n"
    )


def _copy_int(value: int | None) -> str:
    return "\\N" if value is None else str(value)


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
     trades, first_id, last_id, revision, status, gap) = row  # fmt: skip
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
        gap=bool(gap),
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

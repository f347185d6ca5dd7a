"""Candles as packed integer rows, and Arrow columns built from them without Python per value.

The packed form of a candle is its integers as :data:`PACKED_WORDS` big-endian 64-bit words
(:func:`pack_candle`). Storage keeps it beside each row, so that a page of stored candles
arrives as one buffer that numpy views as an array of :data:`PACKED_DTYPE`, and every Arrow
column is built from whole arrays. A ``decimal128`` value is 16 little-endian bytes of two's
complement, so a column is an ``(n, 2)`` int64 array: the scaled integer as the low word,
its sign as the high word. Rows whose scale is coarser than the page's are multiplied up; the
rare product that leaves 64 bits is done with Python integers for that row only.

Candles that are not stored (rolled up on read, computed by ``mdp candles``) take the same
road through :func:`pack_candles`; only candles with a value beyond 64 bits take
:func:`decimal_batch`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from core.candles import Candle, CandleStatus
from core.present.text import DECIMAL_FIELDS, candle_record

PACKED_WORDS: Final = (
    "open_time",
    "price_scale",
    "size_scale",
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
    "status",
    "revision",
)
"""The words of a packed row, each a big-endian int64: the open time in UTC nanoseconds, the
two scales, the decimals as scaled integers (``open`` at the price scale, ``quote_volume`` at
price + size, ``vwap`` at price + 4: :class:`~core.candles.Candle`'s ``_raw`` values), the
trade ids (:data:`NO_TRADE_ID` for none), the status word and the revision.

The status word holds two things: its low byte (:data:`STATUS_MASK`) is the status as its
index in :data:`STATUSES`, and bit 8 (:data:`GAP_FLAG`) is the candle's ``gap`` flag. The flag
came after the packed form (storage migration 0005): rows written before it have the bit
clear, as their candles were not flagged, and keep their 16 words. Every reader of the word
masks it."""

PACKED_DTYPE: Final = np.dtype([(name, ">i8") for name in PACKED_WORDS])
"""One packed row as numpy sees it; a page of rows is an array of these."""

STATUSES: Final = tuple(status.value for status in CandleStatus)
"""Status texts by the code that the status word holds (``open``, ``closed``, ``revised``)."""
STATUS_MASK: Final = 0xFF
"""The bits of the status word that hold the status code."""
GAP_FLAG: Final = 1 << 8
"""The bit of the status word set for a candle over a feed gap (``Candle.gap``)."""
NO_TRADE_ID: Final = -(2**63)
"""The trade-id word of a candle without trades (trade ids are never negative)."""

_PACK: Final = struct.Struct(f">{len(PACKED_WORDS)}q")
_STATUS_CODES: Final = {status: code for code, status in enumerate(CandleStatus)}


def pack_candle(candle: Candle) -> bytes | None:
    """The candle's :data:`PACKED_WORDS`, or None when a value does not fit 64 bits."""
    first, last = candle.first_trade_id, candle.last_trade_id
    try:
        return _PACK.pack(
            candle.open_time,
            candle.price_scale,
            candle.size_scale,
            candle.open_raw,
            candle.high_raw,
            candle.low_raw,
            candle.close_raw,
            candle.volume_raw,
            candle.quote_volume_raw,
            candle.trades,
            candle.vwap_raw,
            candle.taker_buy_volume_raw,
            NO_TRADE_ID if first is None else first,
            NO_TRADE_ID if last is None else last,
            _STATUS_CODES[candle.status] | (GAP_FLAG if candle.gap else 0),
            candle.revision,
        )
    except struct.error:
        return None


Ints = npt.NDArray[np.int64]

DECIMAL_PRECISION: Final = 38
_MAX_DECIMAL: Final = 10**DECIMAL_PRECISION
_MAX_FACTOR_EXPONENT: Final = 18  # 10**18 is the largest power of ten in an int64
_MASK64: Final = 2**64 - 1
_STATUS_TEXTS: Final = pa.array(STATUSES, pa.string())
_DECIMAL_SCALE_OF: Final = {
    "open": "price",
    "high": "price",
    "low": "price",
    "close": "price",
    "volume": "size",
    "quote_volume": "quote",
    "vwap": "vwap",
    "taker_buy_volume": "size",
}
"""Each decimal column and whose decimal places it has (see :func:`own_scales`)."""
DECIMAL_COLUMNS: Final = DECIMAL_FIELDS


def packed_rows(body: bytes) -> npt.NDArray[np.void]:
    """The rows of a joined ``packed`` buffer, checked to be whole rows in open-time order."""
    if len(body) % PACKED_DTYPE.itemsize:
        raise ValueError(
            f"packed candle rows are {PACKED_DTYPE.itemsize} bytes each; got {len(body)} bytes"
        )
    rows = np.frombuffer(body, dtype=PACKED_DTYPE)
    times = rows["open_time"]
    if len(rows) > 1 and not bool((times[1:] > times[:-1]).all()):
        raise ValueError("packed candle rows are not in open-time order")
    return rows


def pack_candles(candles: Sequence[Candle]) -> npt.NDArray[np.void] | None:
    """The candles as packed rows, or None when one has a value beyond 64 bits."""
    packed = [pack_candle(candle) for candle in candles]
    if any(row is None for row in packed):
        return None
    return np.frombuffer(b"".join(row for row in packed if row is not None), dtype=PACKED_DTYPE)


def own_scales(rows: npt.NDArray[np.void]) -> dict[str, Ints]:
    """Each row's decimal places per kind: prices, sizes, notional (both), VWAP (price + 4,
    as :attr:`core.candles.Candle.vwap_scale`)."""
    price = rows["price_scale"].astype(np.int64)
    size = rows["size_scale"].astype(np.int64)
    return {"price": price, "size": size, "quote": price + size, "vwap": price + 4}


Labels = str | Sequence[str]
"""The instrument (or interval) of a batch: one for all its rows, or one per row."""


def packed_batch(
    rows: npt.NDArray[np.void], schema: pa.Schema, instrument: Labels, interval: Labels
) -> pa.RecordBatch:
    """A record batch of ``schema`` (candle fields, :data:`~core.present.text.CANDLE_FIELDS`
    or a subset) from packed rows."""
    n = len(rows)
    scales = own_scales(rows)
    arrays: dict[str, pa.Array] = {
        "instrument": _labels(instrument, n),
        "interval": _labels(interval, n),
        "open_time": _fixed(schema.field("open_time").type, _word(rows, "open_time")),
        "trades": _fixed(pa.int64(), _word(rows, "trades")),
        "first_trade_id": _trade_ids(_word(rows, "first_trade_id")),
        "last_trade_id": _trade_ids(_word(rows, "last_trade_id")),
        "revision": _fixed(pa.int64(), _word(rows, "revision")),
    }
    arrays["status"], arrays["gap"] = _status_word(_word(rows, "status"))
    for name, kind in _DECIMAL_SCALE_OF.items():
        arrays[name] = decimal_array(_word(rows, name), scales[kind], schema.field(name).type)
    return pa.RecordBatch.from_arrays([arrays[name] for name in schema.names], schema=schema)


def decimal_array(raw: Ints, own_scale: Ints, kind: pa.Decimal128Type) -> pa.Array:
    """Scaled integers, each at its own scale, as a ``decimal128`` array of ``kind``'s scale."""
    shift = kind.scale - own_scale
    if len(raw) and int(shift.min()) < 0:
        raise ValueError(f"a value has more decimal places than the column's {kind.scale}")
    words = _pooled(len(raw), 2)
    slow = np.zeros(len(raw), dtype=bool)
    if shift.any():
        exponent = np.minimum(shift, _MAX_FACTOR_EXPONENT)
        factor = np.power(np.int64(10), exponent)
        slow = (shift > _MAX_FACTOR_EXPONENT) | (np.abs(raw) > np.iinfo(np.int64).max // factor)
        words[:, 0] = np.where(slow, 0, raw * np.where(slow, 1, factor))
    else:
        words[:, 0] = raw
    np.right_shift(words[:, 0], 63, out=words[:, 1])  # the high word: the sign
    for index in np.flatnonzero(slow):  # beyond 64 bits: exact, with Python integers
        value = int(raw[index]) * 10 ** int(shift[index])
        if abs(value) >= _MAX_DECIMAL:
            raise ValueError(f"a value has more than {DECIMAL_PRECISION} digits")
        words.view(np.uint64)[index, 0] = value & _MASK64
        words[index, 1] = value >> 64
    return pa.Array.from_buffers(kind, len(raw), [None, pa.py_buffer(words)])


def decimal_batch(
    candles: Sequence[Candle], schema: pa.Schema, instrument: Labels, interval: Labels
) -> pa.RecordBatch:
    """The same batch as :func:`packed_batch`, from :class:`Decimal` s: for candles with a
    value beyond 64 bits (a few per page at most, so speed does not matter here)."""
    records = [candle_record(candle) for candle in candles]
    columns: dict[str, pa.Array] = {
        "instrument": _labels(instrument, len(candles)),
        "interval": _labels(interval, len(candles)),
        "open_time": pa.array([c.open_time for c in candles], schema.field("open_time").type),
        "trades": pa.array([c.trades for c in candles], pa.int64()),
        "first_trade_id": pa.array([c.first_trade_id for c in candles], pa.int64()),
        "last_trade_id": pa.array([c.last_trade_id for c in candles], pa.int64()),
        "status": pa.array([r.status for r in records], pa.string()),
        "revision": pa.array([c.revision for c in candles], pa.int64()),
        "gap": pa.array([c.gap for c in candles], pa.bool_()),
    }
    for name in DECIMAL_COLUMNS:
        values = [Decimal(getattr(record, name)) for record in records]
        columns[name] = pa.array(values, schema.field(name).type)
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)


def _labels(labels: Labels, n: int) -> pa.Array:
    if isinstance(labels, str):
        return pa.repeat(pa.scalar(labels, pa.string()), n)
    return pa.array(labels, pa.string())


def _word(rows: npt.NDArray[np.void], name: str) -> Ints:
    """One word of every row, in native byte order."""
    values = _pooled(len(rows))
    values[:] = rows[name]
    return values


def _pooled(*shape: int) -> Ints:
    """A new int64 array in memory from Arrow's pool. A page's columns are megabytes that
    live for one request; Arrow's allocator keeps such memory for the next request, where
    the C library's gives it back to the system and then pays a page fault for each 4 KiB
    of it again (measured here: 2.5 ms of a page's 4.8 ms of encoding)."""
    buffer = pa.allocate_buffer(8 * math.prod(shape))
    return np.frombuffer(buffer, dtype=np.int64).reshape(shape)


def _fixed(kind: pa.DataType, values: Ints) -> pa.Array:
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _trade_ids(values: Ints) -> pa.Array:
    missing = values == NO_TRADE_ID
    if not missing.any():
        return _fixed(pa.int64(), values)
    valid = np.packbits(~missing, bitorder="little")
    return pa.Array.from_buffers(
        pa.int64(),
        len(values),
        [pa.py_buffer(valid), pa.py_buffer(values)],
        null_count=int(missing.sum()),
    )


def status_codes(words: Ints) -> Ints:
    """The status codes (indexes in :data:`STATUSES`) of status words:
    the code is the word's low byte, the gap flag its bit 8
    (:data:`PACKED_WORDS`). ``ValueError`` for a word that is neither."""
    if len(words) and (int(words.min()) < 0 or int(words.max()) >= GAP_FLAG << 1):
        raise ValueError("a packed candle row has an unknown status word")
    codes: Ints = words & STATUS_MASK
    if len(codes) and int(codes.max()) >= len(STATUSES):
        raise ValueError("a packed candle row has an unknown status code")
    return codes


def _status_word(words: Ints) -> tuple[pa.Array, pa.Array]:
    """The ``status`` and ``gap`` columns from the status word."""
    codes = status_codes(words)
    return pc.take(_STATUS_TEXTS, pa.array(codes)), pa.array((words & GAP_FLAG) != 0)

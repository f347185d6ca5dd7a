"""Arrow record batches of candles from packed rows, without Python per value.

A page of stored candles arrives as the ``packed`` columns of its rows joined into one
buffer (:data:`storage.candle_rows.PACKED_WORDS`, big-endian int64 words): numpy views it
as an array of :data:`~storage.candle_rows.PACKED_DTYPE`, and every Arrow column is built
from whole arrays. A ``decimal128`` value is 16 little-endian bytes of two's complement, so
a column is an ``(n, 2)`` int64 array: the scaled integer as the low word, its sign as the
high word. Rows whose scale is coarser than the page's are multiplied up; the rare product
that leaves 64 bits is done with Python integers for that row only.

Candles that are not stored (rolled up on read) take the same road through
:func:`pack_candles`; only candles with a value beyond 64 bits take :func:`decimal_batch`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from core.candles import Candle
from storage.candle_rows import (
    GAP_FLAG,
    NO_TRADE_ID,
    PACKED_DTYPE,
    STATUSES,
    candle_record,
    pack_candle,
)
from storage.packed_rows import status_codes

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
DECIMAL_COLUMNS: Final = tuple(_DECIMAL_SCALE_OF)


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


def packed_batch(
    rows: npt.NDArray[np.void], schema: pa.Schema, instrument: str, interval: str
) -> pa.RecordBatch:
    """A record batch of ``schema`` (the API's candle columns) from packed rows."""
    n = len(rows)
    scales = own_scales(rows)
    arrays: dict[str, pa.Array] = {
        "instrument": pa.repeat(pa.scalar(instrument, pa.string()), n),
        "interval": pa.repeat(pa.scalar(interval, pa.string()), n),
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
    candles: Sequence[Candle], schema: pa.Schema, instrument: str, interval: str
) -> pa.RecordBatch:
    """The same batch as :func:`packed_batch`, from :class:`Decimal` s: for candles with a
    value beyond 64 bits (a few per page at most, so speed does not matter here)."""
    records = [candle_record(candle) for candle in candles]
    columns: dict[str, pa.Array] = {
        "instrument": pa.array([instrument] * len(candles), pa.string()),
        "interval": pa.array([interval] * len(candles), pa.string()),
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


def _status_word(words: Ints) -> tuple[pa.Array, pa.Array]:
    """The ``status`` and ``gap`` columns from the status word."""
    codes = status_codes(words)
    return pc.take(_STATUS_TEXTS, pa.array(codes)), pa.array((words & GAP_FLAG) != 0)

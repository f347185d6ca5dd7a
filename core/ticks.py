"""Trades (ticks): one at a time as :class:`Tick`, or columnar as :class:`TickBatch`.

A ``Tick`` is the friendly form, with :class:`~decimal.Decimal` price and size. A ``TickBatch``
holds the ticks of one instrument as numpy columns with fixed-point prices and sizes: it is the
form the bus carries and the candle engine eats, so that per-message and per-tick Python costs
are paid once per batch.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import msgspec
import numpy as np
import numpy.typing as npt

from core.instruments import validate_instrument
from core.numbers import MAX_SCALE, scale_of, to_decimal, to_raw

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

_INT64_MAX = np.iinfo(np.int64).max
_COLUMNS = ("trade_id", "price", "size", "side", "ts_event", "ts_recv", "trades")


class Side(enum.IntEnum):
    """The aggressor (taker) side of a trade."""

    SELL = -1
    UNKNOWN = 0
    BUY = 1


class Tick(msgspec.Struct, frozen=True):
    """One trade: ``ts_event`` is venue time, ``ts_recv`` receipt time, both UTC nanoseconds.

    ``trades`` is how many venue trades this tick stands for: 1, except for aggregated trades
    (a Binance aggTrade covers ``last_trade_id - first_trade_id + 1`` of them).
    """

    instrument: str
    trade_id: int
    price: Decimal
    size: Decimal
    side: Side
    ts_event: int
    ts_recv: int
    trades: int = 1

    def __post_init__(self) -> None:
        validate_instrument(self.instrument)
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"price must be a positive number, got {self.price}")
        if not self.size.is_finite() or self.size <= 0:
            raise ValueError(f"size must be a positive number, got {self.size}")
        if self.ts_event <= 0 or self.ts_recv <= 0:
            raise ValueError("ts_event and ts_recv must be positive UTC nanoseconds")
        if self.trade_id < 0 or self.trade_id > _INT64_MAX:
            raise ValueError(f"trade_id must be a non-negative 64-bit integer, got {self.trade_id}")
        if self.trades < 1:
            raise ValueError(f"trades must be at least 1, got {self.trades}")


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Ticks of one instrument as columns, in arrival order.

    ``price`` holds ``price * 10**price_scale`` and ``size`` holds ``size * 10**size_scale``.
    Every row satisfies the invariants of :class:`Tick`; construction checks them all at once
    and raises ``ValueError`` naming the first bad row.
    """

    instrument: str
    price_scale: int
    size_scale: int
    trade_id: I64
    price: I64
    size: I64
    side: I8
    ts_event: I64
    ts_recv: I64
    trades: I64

    def __post_init__(self) -> None:
        validate_instrument(self.instrument)
        for scale in (self.price_scale, self.size_scale):
            if not 0 <= scale <= MAX_SCALE:
                raise ValueError(f"scales must be within 0..{MAX_SCALE}, got {scale}")
        n = len(self.trade_id)
        for name in _COLUMNS:
            column = getattr(self, name)
            if not isinstance(column, np.ndarray) or column.ndim != 1 or len(column) != n:
                raise ValueError(f"column {name} must be a 1-d array of {n} rows")
            wanted = np.int8 if name == "side" else np.int64
            if column.dtype != wanted:
                raise ValueError(f"column {name} must be {np.dtype(wanted)}, not {column.dtype}")
        if n:
            self._check_rows()

    def _check_rows(self) -> None:
        # one reduction per column; the first bad row is looked for only when one fails
        if (
            self.price.min() > 0
            and self.size.min() > 0
            and self.ts_event.min() > 0
            and self.ts_recv.min() > 0
            and self.trade_id.min() >= 0
            and self.trades.min() >= 1
            and self.side.min() >= -1
            and self.side.max() <= 1
        ):
            return
        checks = (
            (self.price <= 0, "price must be positive"),
            (self.size <= 0, "size must be positive"),
            (self.ts_event <= 0, "ts_event must be positive"),
            (self.ts_recv <= 0, "ts_recv must be positive"),
            (self.trade_id < 0, "trade_id must be non-negative"),
            (self.trades < 1, "trades must be at least 1"),
            ((self.side < -1) | (self.side > 1), "side must be -1, 0 or 1"),
        )
        for bad, reason in checks:
            if bad.any():
                row = int(np.argmax(bad))
                raise ValueError(f"row {row}: {reason}")

    def __len__(self) -> int:
        return len(self.trade_id)

    @classmethod
    def from_ticks(cls, ticks: Sequence[Tick]) -> TickBatch:
        """Columns from ticks of one instrument; scales are the finest any tick needs."""
        if not ticks:
            raise ValueError("a batch needs at least one tick (use TickBatch.empty)")
        instrument = ticks[0].instrument
        if any(tick.instrument != instrument for tick in ticks):
            raise ValueError("a batch holds ticks of one instrument only")
        price_scale = max(scale_of(tick.price) for tick in ticks)
        size_scale = max(scale_of(tick.size) for tick in ticks)
        return cls(
            instrument=instrument,
            price_scale=price_scale,
            size_scale=size_scale,
            trade_id=np.array([t.trade_id for t in ticks], dtype=np.int64),
            price=np.array([to_raw(t.price, price_scale) for t in ticks], dtype=np.int64),
            size=np.array([to_raw(t.size, size_scale) for t in ticks], dtype=np.int64),
            side=np.array([int(t.side) for t in ticks], dtype=np.int8),
            ts_event=np.array([t.ts_event for t in ticks], dtype=np.int64),
            ts_recv=np.array([t.ts_recv for t in ticks], dtype=np.int64),
            trades=np.array([t.trades for t in ticks], dtype=np.int64),
        )

    @classmethod
    def concat(cls, batches: Sequence[TickBatch]) -> TickBatch:
        """The rows of ``batches`` (one instrument, the same scales) in one batch, in order."""
        if not batches:
            raise ValueError("concat needs at least one batch")
        first = batches[0]
        if len(batches) == 1:
            return first
        scales = (first.price_scale, first.size_scale)
        for batch in batches:
            if batch.instrument != first.instrument:
                raise ValueError("concat joins batches of one instrument only")
            if (batch.price_scale, batch.size_scale) != scales:
                raise ValueError("concat joins batches of the same scales only")
        return cls(
            first.instrument,
            first.price_scale,
            first.size_scale,
            *(np.concatenate([getattr(batch, name) for batch in batches]) for name in _COLUMNS),
        )

    @classmethod
    def empty(cls, instrument: str, price_scale: int = 0, size_scale: int = 0) -> TickBatch:
        """A batch without rows."""
        i64 = np.zeros(0, dtype=np.int64)
        return cls(
            instrument, price_scale, size_scale, i64, i64, i64, np.zeros(0, np.int8), i64, i64, i64
        )

    def tick(self, row: int) -> Tick:
        """Row ``row`` as a :class:`Tick`."""
        return Tick(
            instrument=self.instrument,
            trade_id=int(self.trade_id[row]),
            price=to_decimal(int(self.price[row]), self.price_scale),
            size=to_decimal(int(self.size[row]), self.size_scale),
            side=Side(int(self.side[row])),
            ts_event=int(self.ts_event[row]),
            ts_recv=int(self.ts_recv[row]),
            trades=int(self.trades[row]),
        )

    def ticks(self) -> list[Tick]:
        """Every row as a :class:`Tick` (slow; for tests, tools and rejects)."""
        return [self.tick(row) for row in range(len(self))]

    def take(self, rows: npt.NDArray[np.intp] | npt.NDArray[np.bool_] | slice) -> TickBatch:
        """A batch of the selected rows (an index array, a boolean mask or a slice)."""
        return TickBatch(
            self.instrument,
            self.price_scale,
            self.size_scale,
            self.trade_id[rows],
            self.price[rows],
            self.size[rows],
            self.side[rows],
            self.ts_event[rows],
            self.ts_recv[rows],
            self.trades[rows],
        )

    def with_scales(self, price_scale: int, size_scale: int) -> TickBatch:
        """The same ticks with more decimal places (exact; raises if a column would overflow)."""
        if price_scale < self.price_scale or size_scale < self.size_scale:
            raise ValueError("a batch can only move to finer scales")
        if (price_scale, size_scale) == (self.price_scale, self.size_scale):
            return self
        price = _scaled(self.price, price_scale - self.price_scale, "price")
        size = _scaled(self.size, size_scale - self.size_scale, "size")
        return TickBatch(
            self.instrument,
            price_scale,
            size_scale,
            self.trade_id,
            price,
            size,
            self.side,
            self.ts_event,
            self.ts_recv,
            self.trades,
        )


def _scaled(column: I64, places: int, name: str) -> I64:
    if places == 0:
        return column
    factor = 10**places
    if len(column) and int(column.max()) > _INT64_MAX // factor:
        raise ValueError(f"{name} does not fit 64 bits with {places} more decimal places")
    return column * np.int64(factor)


def batches_by_instrument(ticks: Iterable[Tick]) -> list[TickBatch]:
    """Group ticks into one batch per instrument, keeping arrival order within each."""
    groups: dict[str, list[Tick]] = {}
    for tick in ticks:
        groups.setdefault(tick.instrument, []).append(tick)
    return [TickBatch.from_ticks(group) for group in groups.values()]

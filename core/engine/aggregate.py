"""Vectorised bucketing: sorted ticks to per-bucket partial bars, and finer bars to coarser.

Everything here is numpy over arrays sorted by (``ts_event``, trade id); no state, no Python
loop per tick. A :class:`Partials` row is a bar over the ticks of one bucket in one batch; the
engine merges those rows into its candles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.ticks import Side, TickBatch

I64 = npt.NDArray[np.int64]
Column = npt.NDArray[np.int64] | npt.NDArray[np.object_]

_INT64_SAFE = 2**62


@dataclass(frozen=True, slots=True)
class Partials:
    """Columns of partial bars, one row per bucket, in bucket order.

    ``quote`` is int64 when the batch's notional sums fit, else Python ints (object dtype);
    ``volume`` and ``taker`` likewise when its size sums fit.
    """

    bucket: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: Column
    quote: Column
    taker: Column
    trades: I64
    first_ts: I64
    first_id: I64
    last_ts: I64
    last_id: I64

    def __len__(self) -> int:
        return len(self.bucket)


def sort_key_order(ts: I64, trade_id: I64) -> npt.NDArray[np.intp] | None:
    """The permutation sorting rows by (ts, trade id), or ``None`` when already sorted."""
    if len(ts) < 2:
        return None
    step = np.diff(ts)
    if (step > 0).all() or ((step >= 0).all() and ((step > 0) | (np.diff(trade_id) > 0)).all()):
        return None
    return np.lexsort((trade_id, ts))


def tick_partials(batch: TickBatch, interval_ns: int) -> Partials:
    """Partial bars of a batch already sorted by (ts, trade id), for one interval."""
    price, size = batch.price, batch.size
    rows = len(price)
    top = int(size.max()) * rows if rows else 0
    # int64 when no sum can overflow; else Python ints (exact, slower): no batch is too large
    volume: Column = size if top < _INT64_SAFE else size.astype(object)
    quote: Column = (
        price * size
        if int(price.max(initial=0)) * top < _INT64_SAFE
        else price.astype(object) * size.astype(object)
    )
    taker = np.where(batch.side == Side.BUY, volume, 0)
    ts = batch.ts_event
    ids = batch.trade_id
    return _reduce(
        ts // interval_ns, price, price, price, price, volume, quote, taker, batch.trades,
        ts, ids, ts, ids,
    )  # fmt: skip


def coarsen(finer: Partials, finer_ns: int, interval_ns: int) -> Partials:
    """Partial bars of a coarser interval (a multiple of ``finer_ns``) from finer ones."""
    bucket = finer.bucket * finer_ns // interval_ns
    return _reduce(
        bucket, finer.open, finer.high, finer.low, finer.close, finer.volume, finer.quote,
        finer.taker, finer.trades, finer.first_ts, finer.first_id, finer.last_ts, finer.last_id,
    )  # fmt: skip


def _reduce(
    bucket: I64,
    open_: I64,
    high: I64,
    low: I64,
    close: I64,
    volume: Column,
    quote: Column,
    taker: Column,
    trades: I64,
    first_ts: I64,
    first_id: I64,
    last_ts: I64,
    last_id: I64,
) -> Partials:
    rows = len(bucket)
    if bucket[0] == bucket[-1]:  # one bucket (sorted input): plain reductions, no reduceat
        last = slice(rows - 1, rows)
        one = slice(0, 1)
        return Partials(
            bucket[one], open_[one], high.max(keepdims=True), low.min(keepdims=True),
            close[last], volume.sum(keepdims=True), quote.sum(keepdims=True),
            taker.sum(keepdims=True), trades.sum(keepdims=True),
            first_ts[one], first_id[one], last_ts[last], last_id[last],
        )  # fmt: skip
    change = np.flatnonzero(bucket[1:] != bucket[:-1]) + 1
    if len(change) == rows - 1:  # every row is its own bucket: nothing to reduce
        return Partials(
            bucket, open_, high, low, close, volume, quote, taker, trades,
            first_ts, first_id, last_ts, last_id,
        )  # fmt: skip
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [rows])) - 1
    add = np.add.reduceat
    return Partials(
        bucket=bucket[starts],
        open=open_[starts],
        high=np.maximum.reduceat(high, starts),
        low=np.minimum.reduceat(low, starts),
        close=close[ends],
        volume=add(volume, starts),
        quote=add(quote, starts),
        taker=add(taker, starts),
        trades=add(trades, starts),
        first_ts=first_ts[starts],
        first_id=first_id[starts],
        last_ts=last_ts[ends],
        last_id=last_id[ends],
    )

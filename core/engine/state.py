"""Per-instrument engine state: bars being built, the event clock and the trade ids seen."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
_NO_TS = -(2**63)
NO_BUCKET = -(2**62)
"""``closed_upto`` before anything closed: every real bucket index is above it."""


class Bar:
    """A mutable candle accumulator (fixed point, Python ints: no overflow).

    ``trades == 0`` marks a flat bar made by the ``fill`` rule; the first real tick merged into
    it replaces it whole (but not its ``gap`` flag: its bucket still meets the feed gap).
    """

    __slots__ = (
        "close",
        "emitted",
        "first_id",
        "first_ts",
        "gap",
        "high",
        "last_id",
        "last_ts",
        "low",
        "open",
        "quote",
        "taker",
        "trades",
        "volume",
    )

    def __init__(
        self,
        open_: int,
        high: int,
        low: int,
        close: int,
        volume: int,
        quote: int,
        taker: int,
        trades: int,
        first_ts: int,
        first_id: int,
        last_ts: int,
        last_id: int,
        emitted: int = 0,
        gap: int = 0,
    ) -> None:
        self.open = open_
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.quote = quote
        self.taker = taker
        self.trades = trades
        self.first_ts = first_ts
        self.first_id = first_id
        self.last_ts = last_ts
        self.last_id = last_id
        self.emitted = emitted  # versions emitted so far: the next one's revision
        self.gap = bool(gap)  # the bucket meets a feed gap

    @classmethod
    def flat(cls, price: int) -> Bar:
        """A bar without trades at ``price`` (the ``fill`` rule)."""
        return cls(price, price, price, price, 0, 0, 0, 0, _NO_TS, -1, _NO_TS, -1)

    def merge(
        self,
        open_: int,
        high: int,
        low: int,
        close: int,
        volume: int,
        quote: int,
        taker: int,
        trades: int,
        first_ts: int,
        first_id: int,
        last_ts: int,
        last_id: int,
    ) -> None:
        """Fold in a partial bar of the same bucket."""
        if self.trades == 0:
            self.open, self.high, self.low, self.close = open_, high, low, close
            self.volume, self.quote, self.taker, self.trades = volume, quote, taker, trades
            self.first_ts, self.first_id, self.last_ts, self.last_id = (
                first_ts, first_id, last_ts, last_id,
            )  # fmt: skip
            return
        if first_ts < self.first_ts or (first_ts == self.first_ts and first_id < self.first_id):
            self.open, self.first_ts, self.first_id = open_, first_ts, first_id
        if last_ts > self.last_ts or (last_ts == self.last_ts and last_id > self.last_id):
            self.close, self.last_ts, self.last_id = close, last_ts, last_id
        self.high = max(self.high, high)
        self.low = min(self.low, low)
        self.volume += volume
        self.quote += quote
        self.taker += taker
        self.trades += trades

    def rescale(self, price_factor: int, size_factor: int) -> None:
        """Move to finer scales: prices times ``price_factor``, sizes times ``size_factor``."""
        self.open *= price_factor
        self.high *= price_factor
        self.low *= price_factor
        self.close *= price_factor
        self.volume *= size_factor
        self.taker *= size_factor
        self.quote *= price_factor * size_factor

    def as_tuple(self) -> tuple[int, ...]:
        """Every field as an int, in :meth:`__init__` order (for the checkpoint)."""
        return (
            self.open, self.high, self.low, self.close, self.volume, self.quote, self.taker,
            self.trades, self.first_ts, self.first_id, self.last_ts, self.last_id, self.emitted,
            int(self.gap),
        )  # fmt: skip


class SeenIds:
    """Trade ids accepted within the horizon, for de-duplication.

    Recent batches' ids are kept as they came; older ones are merged into one sorted array
    (searched with ``searchsorted``). Ids of ticks older than the horizon are dropped on merge:
    such a tick would be refused as too late anyway.
    """

    __slots__ = ("max_id", "recent", "sorted_ids", "sorted_ts")

    MERGE_AFTER = 16

    def __init__(self) -> None:
        self.max_id = -1
        self.recent: list[tuple[I64, I64]] = []
        self.sorted_ids: I64 = np.zeros(0, np.int64)
        self.sorted_ts: I64 = np.zeros(0, np.int64)

    def seen(self, ids: I64) -> npt.NDArray[np.bool_]:
        """Mask of ``ids`` accepted before."""
        found = np.zeros(len(ids), dtype=bool)
        if not len(ids) or int(ids.min()) > self.max_id:
            return found  # the common case: ids only grow
        if len(self.sorted_ids):
            where = np.searchsorted(self.sorted_ids, ids).clip(max=len(self.sorted_ids) - 1)
            found |= self.sorted_ids[where] == ids
        low = int(ids.min())
        for part_ids, _ in self.recent:
            if len(part_ids) and int(part_ids.max()) >= low:
                found |= np.isin(ids, part_ids)
        return found

    def add(self, ids: I64, ts: I64, horizon_floor: int) -> None:
        if not len(ids):
            return
        self.recent.append((ids, ts))
        self.max_id = max(self.max_id, int(ids.max()))
        if len(self.recent) > self.MERGE_AFTER:
            self.merge(horizon_floor)

    def merge(self, horizon_floor: int) -> None:
        ids = np.concatenate([self.sorted_ids, *(part[0] for part in self.recent)])
        ts = np.concatenate([self.sorted_ts, *(part[1] for part in self.recent)])
        keep = ts >= horizon_floor
        ids, ts = ids[keep], ts[keep]
        order = np.argsort(ids, kind="stable")
        self.sorted_ids, self.sorted_ts = ids[order], ts[order]
        self.recent = []


class IntervalState:
    """Bars of one instrument and interval: open ones and closed ones still within the horizon."""

    __slots__ = ("bars", "closed_upto", "last_closed", "last_open_emit", "open", "pending")

    def __init__(self) -> None:
        self.bars: dict[int, Bar] = {}
        self.open: set[int] = set()  # buckets with a bar, not closed yet
        self.closed_upto = NO_BUCKET  # every bucket below this index is closed
        self.last_closed: tuple[int, int] | None = None  # (bucket, close) of the newest closed
        self.pending: set[int] = set()  # open buckets with an update held back by the throttle
        self.last_open_emit = _NO_TS

    def evict(self, below_bucket: int, keep_hint: int) -> None:
        """Drop closed bars below ``below_bucket`` once the map has grown past twice the hint."""
        if len(self.bars) > max(64, 2 * keep_hint):
            self.bars = {b: bar for b, bar in self.bars.items() if b >= below_bucket}


class InstrumentState:
    """Everything the engine knows about one instrument."""

    __slots__ = (
        "clock",
        "event_high",
        "intervals",
        "last_recv",
        "price_scale",
        "seen",
        "size_scale",
    )

    def __init__(self, price_scale: int, size_scale: int, interval_count: int) -> None:
        self.price_scale = price_scale
        self.size_scale = size_scale
        self.event_high = _NO_TS  # newest ts_event accepted
        self.clock = _NO_TS  # event-time clock: event_high, or later by the wall clock
        self.last_recv = _NO_TS  # newest ts_recv, for moving the clock on when idle
        self.seen = SeenIds()
        self.intervals: list[IntervalState] = [IntervalState() for _ in range(interval_count)]

    @property
    def started(self) -> bool:
        return self.clock != _NO_TS

    def rescale(self, price_factor: int, size_factor: int) -> None:
        """Move every bar to finer scales (exact); the caller records the new scales."""
        for iv in self.intervals:
            for bar in iv.bars.values():
                bar.rescale(price_factor, size_factor)
            if iv.last_closed is not None:
                iv.last_closed = (iv.last_closed[0], iv.last_closed[1] * price_factor)

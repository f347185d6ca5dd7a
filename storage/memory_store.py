"""An in-memory :class:`~storage.repository.MarketDataStore`: the same contract, no database.

For tests of the packages above storage, and as the reference the repository suite holds the
PostgreSQL store to. Nothing survives the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

import msgspec

from core.candles import Candle
from core.gaps import FeedGap
from core.intervals import Interval
from core.rejects import RejectedTick
from core.ticks import Tick, TickBatch
from storage.candle_rows import latest_revisions
from storage.records import Rejection, TopicPartition, WriteReport


class MemoryStore:
    def __init__(self) -> None:
        self._ticks: dict[tuple[str, int, int], Tick] = {}
        self._tick_scales: dict[tuple[str, int, int], tuple[int, int]] = {}
        self._candles: dict[tuple[str, str, int], Candle] = {}
        self._written_us: dict[tuple[str, str, int], int] = {}
        self._rejections: list[Rejection] = []
        self._rejection_keys: set[tuple[str, int, str]] = set()
        self._gaps: dict[tuple[str, int, int, str], FeedGap] = {}
        self._offsets: dict[str, dict[TopicPartition, int]] = {}
        self._instruments: set[str] = set()
        self._lock = asyncio.Lock()

    async def write(
        self,
        ticks: Sequence[TickBatch] = (),
        candles: Sequence[Candle] = (),
        rejects: Sequence[RejectedTick | Rejection] = (),
        *,
        gaps: Sequence[FeedGap] = (),
        offsets: Mapping[TopicPartition, int] | None = None,
        group: str | None = None,
    ) -> WriteReport:
        if offsets and group is None:
            raise ValueError("offsets need the consumer group they belong to")
        async with self._lock:
            if offsets and group is not None:
                stored = self._offsets.get(group, {})
                if all(tp in stored and offset <= stored[tp] for tp, offset in offsets.items()):
                    return WriteReport(replayed=True)
            written = duplicates = 0
            for batch in ticks:
                for tick in batch.ticks():
                    key = (tick.instrument, tick.ts_event, tick.trade_id)
                    if key in self._ticks:
                        duplicates += 1
                    else:
                        self._ticks[key] = tick
                        self._tick_scales[key] = (batch.price_scale, batch.size_scale)
                        written += 1
                if len(batch):
                    self._instruments.add(batch.instrument)
            candles_written = 0
            for candle in latest_revisions(candles):
                held = self._candles.get(candle.key)
                if held is None or held.revision < candle.revision:
                    self._candles[candle.key] = candle
                    self._written_us[candle.key] = time.time_ns() // 1000
                    candles_written += 1
                self._instruments.add(candle.instrument)
            rejects_written = 0
            for rejected in rejects:
                rejection = Rejection.of(rejected)
                if rejection.key is not None and rejection.key in self._rejection_keys:
                    continue
                if rejection.key is not None:
                    self._rejection_keys.add(rejection.key)
                if rejection.rejected_at is None:
                    rejection = msgspec.structs.replace(rejection, rejected_at=time.time_ns())
                self._rejections.append(rejection)
                rejects_written += 1
            gaps_written = 0
            for gap in gaps:
                if (gap_key := _gap_key(gap)) not in self._gaps:
                    self._gaps[gap_key] = gap
                    gaps_written += 1
                self._instruments.add(gap.instrument)
            if offsets and group is not None:
                stored = self._offsets.setdefault(group, {})
                for tp, offset in offsets.items():
                    stored[tp] = max(offset, stored.get(tp, offset))
            return WriteReport(
                ticks_written=written,
                ticks_duplicate=duplicates,
                candles_written=candles_written,
                candles_ignored=len(candles) - candles_written,
                rejects_written=rejects_written,
                gaps_written=gaps_written,
                gaps_duplicate=len(gaps) - gaps_written,
            )

    async def stored_offsets(self, group: str) -> dict[TopicPartition, int]:
        return dict(self._offsets.get(group, {}))

    async def candles(
        self, instrument: str, interval: Interval, start: int, end: int
    ) -> list[Candle]:
        found = [
            candle
            for (name, label, open_time), candle in self._candles.items()
            if name == instrument and label == interval.label and start <= open_time < end
        ]
        return sorted(found, key=lambda candle: candle.open_time)

    def written_us(self, candle: Candle) -> int:
        """When ``candle``'s stored revision was written (epoch microseconds): the
        ``updated_at`` of the PostgreSQL store."""
        return self._written_us[candle.key]

    async def last_candles(
        self, instrument: str, interval: Interval, before: int, count: int
    ) -> list[Candle]:
        found = await self.candles(instrument, interval, -(2**63), before)
        return found[-count:] if count > 0 else []

    def tick_scales(self, tick: Tick) -> tuple[int, int]:
        """The price and size decimal places ``tick`` was written with (its batch's)."""
        return self._tick_scales[(tick.instrument, tick.ts_event, tick.trade_id)]

    def tick_list(self, instrument: str, start: int, end: int) -> list[Tick]:
        """The ticks of :meth:`ticks`, by (``ts_event``, trade id)."""
        return sorted(
            (
                tick
                for (name, ts_event, _), tick in self._ticks.items()
                if name == instrument and start <= ts_event < end
            ),
            key=lambda tick: (tick.ts_event, tick.trade_id),
        )

    async def ticks(self, instrument: str, start: int, end: int) -> TickBatch:
        found = self.tick_list(instrument, start, end)
        if not found:
            return TickBatch.empty(instrument)
        return TickBatch.from_ticks(found)

    async def gaps(self, instrument: str, start: int, end: int) -> list[FeedGap]:
        return [
            gap
            for key, gap in sorted(self._gaps.items())
            if key[0] == instrument and gap.overlaps(start, end)
        ]

    async def last_trades(self, instruments: Sequence[str]) -> dict[str, tuple[int, int]]:
        wanted = set(instruments)
        last: dict[str, tuple[int, int]] = {}  # instrument -> (ts_event, trade id)
        for name, ts_event, trade_id in self._ticks:
            if name in wanted:
                last[name] = max(last.get(name, (ts_event, trade_id)), (ts_event, trade_id))
        return {name: (trade_id, ts_event) for name, (ts_event, trade_id) in last.items()}

    async def instruments(self) -> list[str]:
        return sorted(self._instruments)

    async def rejections(self, instrument: str | None = None) -> list[Rejection]:
        return [r for r in self._rejections if instrument is None or r.instrument == instrument]


def _gap_key(gap: FeedGap) -> tuple[str, int, int, str]:
    """What makes a repeated gap the same one (the PostgreSQL store's key)."""
    return (gap.instrument, gap.start_ns, gap.end_ns, gap.reason.value)

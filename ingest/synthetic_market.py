"""The synthetic market of ``mdp up``: first its history, then live ticks in real time.

A newcomer's chart should be full at once, on every interval. So before the live ticks the
market publishes ``history`` of the past (a day by default): per instrument one tick a second
over the last quarter of an hour and one every fifteen seconds before that, each weighing as
much as that time of the live market (see :class:`SyntheticFeed`'s ``weight``), generated with
numpy and sent as fast as the bus takes it, through the same path as live ticks (``ts_recv`` is
the wall clock when it is published, so the engine treats it as ticks that arrived now, not as
late ones). Every candle costs the engine, the writer and the gateway some Python work, so the
older part is sparser: a day at one tick a second would be about 265,000 candle updates for
three instruments, a minute's work; this way it is about 25,000.

After a restart an instrument continues where its stored trades end: from the price and time
of its last stored trade (:class:`SyntheticResume`), the time it was down filled in the same
way (up to ``history`` back), so the chart shows neither a hole nor a jump back to the seed's
price. History is generated in segments up to the wall clock, then up to the wall clock again
(the first took a moment), until less than a second remains; the live ticks start there.

The instruments' batches are merged by time, not sent one instrument after another: every
batch is stamped as received now, and the engine moves an instrument that gets nothing on by
the time it waits (docs/candles.md, "Idle instruments"), so one instrument's long refill would
make the others' late.

Trade ids are the microsecond of a segment's start plus the tick's index: they grow with time
across segments and restarts (a segment has fewer ticks than microseconds).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import numpy as np

from core.numbers import to_decimal
from core.ticks import TickBatch
from ingest.pacing import paced, received_at
from ingest.synthetic import NS_PER_SECOND, SyntheticFeed

DENSE_SPACING: Final = NS_PER_SECOND
"""The recent history has one tick a second per instrument..."""
DENSE_SPAN: Final = 900 * NS_PER_SECOND
"""... over the last quarter of an hour (so that the 1s chart is full too) ..."""
SPARSE_SPACING: Final = 15 * NS_PER_SECOND
"""... and one every fifteen seconds before that (four to a 1m candle)."""
HISTORY_BATCH: Final = 3_600
"""Ticks of one instrument per history batch (an hour)."""
LIVE_BATCHES_PER_SECOND: Final = 10
LIVE_DURATION: Final = 10 * 365 * 86_400.0
"""The live feed runs for ten years, i.e. until stopped."""


@dataclass(frozen=True, slots=True)
class SyntheticResume:
    """Where an instrument continues after a restart: its last stored trade's price and
    ``ts_event``."""

    price: Decimal
    ts_event: int


class SyntheticMarket:
    """Random-walk instruments: ``history`` seconds of the past, then live at ``rate`` ticks
    per second each, until the consumer stops. Iterate it once.

    ``history_ticks`` is how many ticks the history holds (known before it is generated),
    ``history_from`` where it starts.
    """

    def __init__(
        self,
        instruments: tuple[str, ...],
        rate: float,
        seed: int = 0,
        history: float = 86_400.0,
        resume: Mapping[str, SyntheticResume] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if history < 0:
            raise ValueError("history must not be negative")
        self.instruments = instruments
        self.rate = rate
        self.seed = seed
        self.clock = clock
        resume = resume or {}
        now = clock()
        since = now - round(history * NS_PER_SECOND)
        self._starts = {
            name: max(since, resume[name].ts_event + 1) if name in resume else since
            for name in instruments
        }
        self._prices = {name: resume[name].price for name in instruments if name in resume}
        self.history_from = min(self._starts.values(), default=now)
        """Where the history starts (its earliest instrument's first slot)."""
        self.history_ticks = sum(
            count for start in self._starts.values() for _, _, count in _segments(start, now)
        )

    def __aiter__(self) -> AsyncIterator[TickBatch]:
        return self._ticks()

    async def _ticks(self) -> AsyncIterator[TickBatch]:
        while True:
            now = self.clock()
            if not any(_segments(start, now) for start in self._starts.values()):
                break
            for batch in self._history(now):
                yield received_at(batch, self.clock())
                await asyncio.sleep(0)  # the engine and the writer keep pace
        live = SyntheticFeed(
            instruments=self.instruments,
            rate=self.rate,
            duration=LIVE_DURATION,
            start_ns=max(self._starts.values()),
            seed=_segment_seed(self.seed, -1, max(self._starts.values())),
            batch_size=max(1, round(self.rate / LIVE_BATCHES_PER_SECOND)),
            first_trade_id=max(self._starts.values()) // 1000,
            start_prices=self._prices,
        )
        async for batch in paced(live.batches(), speed=1.0, clock=self.clock):
            yield batch

    def _history(self, now: int) -> Iterator[TickBatch]:
        """History of every instrument from where it stands up to ``now``, the instruments'
        batches merged by their first timestamp (as :meth:`SyntheticFeed.batches` merges)."""
        walks = [self._walk(index, name, now) for index, name in enumerate(self.instruments)]
        return heapq.merge(*walks, key=lambda batch: int(batch.ts_event[0]))

    def _walk(self, index: int, instrument: str, now: int) -> Iterator[TickBatch]:
        """History of one instrument from where it stands up to ``now``."""
        for start, spacing, count in _segments(self._starts[instrument], now):
            feed = SyntheticFeed(
                instruments=(instrument,),
                rate=NS_PER_SECOND / spacing,
                duration=count * spacing / NS_PER_SECOND,
                start_ns=start,
                seed=_segment_seed(self.seed, index, start),
                batch_size=HISTORY_BATCH,
                first_trade_id=start // 1000,
                start_prices=self._prices,
                weight=max(1, round(self.rate * spacing / NS_PER_SECOND)),
            )
            for batch in feed.batches():
                self._prices[instrument] = to_decimal(int(batch.price[-1]), batch.price_scale)
                yield batch
            self._starts[instrument] = start + count * spacing


def _segments(start: int, now: int) -> list[tuple[int, int, int]]:
    """The history from ``start`` up to ``now`` as ``(start, spacing, ticks)``: sparse until
    :data:`DENSE_SPAN` before ``now``, dense after; parts without a tick are left out."""
    dense_from = max(start, now - DENSE_SPAN)
    parts = [(start, SPARSE_SPACING, (dense_from - start) // SPARSE_SPACING)]
    if parts[0][2]:
        dense_from = start + parts[0][2] * SPARSE_SPACING
    parts.append((dense_from, DENSE_SPACING, max(0, now - dense_from) // DENSE_SPACING))
    return [part for part in parts if part[2] > 0]


def _segment_seed(seed: int, index: int, start_ns: int) -> int:
    """A seed of one instrument's segment, from the market's seed and the segment's start."""
    state = np.random.SeedSequence([seed, index + 1, start_ns]).generate_state(1, np.uint64)
    return int(state[0])

"""The storage contract every backend keeps (one test suite runs against each of them).

Times are UTC nanoseconds. Ranges are half-open: ``start`` inclusive, ``end`` exclusive, on
``ts_event`` for ticks and ``open_time`` for candles; feed gaps are read when their span
overlaps the range.

Writes are idempotent twice over. Every row has a key (ticks: instrument, ``ts_event``, trade
id; candles: instrument, interval, open time, keeping the highest revision; rejections:
instrument, trade id and reason when known; feed gaps: instrument, span and reason), so
writing the same thing again changes nothing.
And a consumer's offsets are stored in the same transaction as the rows its messages produced:
a writer resumes from :meth:`MarketDataStore.stored_offsets`, and a write whose offsets are
all stored already is skipped whole (``WriteReport.replayed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from core.candles import Candle
from core.gaps import FeedGap
from core.intervals import Interval
from core.rejects import RejectedTick
from core.ticks import TickBatch
from storage.records import Rejection, TopicPartition, WriteReport


class MarketDataStore(Protocol):
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
        """Store ticks, candles, rejections and feed gaps, and ``group``'s next ``offsets``,
        atomically. The first write of a gap is kept (a repeat changes nothing).

        ``offsets`` maps ``(topic, partition)`` to the offset of the next message to read.
        A value the database refuses raises :class:`~storage.refused.WriteRefusedError`, and
        nothing of the write is stored.
        """
        ...

    async def stored_offsets(self, group: str) -> dict[TopicPartition, int]:
        """Where ``group`` resumes: the next offset per ``(topic, partition)`` written."""
        ...

    async def candles(
        self, instrument: str, interval: Interval, start: int, end: int
    ) -> list[Candle]:
        """Candles opening in ``[start, end)``, by open time, each in its latest revision."""
        ...

    async def last_candles(
        self, instrument: str, interval: Interval, before: int, count: int
    ) -> list[Candle]:
        """The newest ``count`` candles opening before ``before``, however old, by open time
        (oldest first), each in its latest revision. A live snapshot starts from them."""
        ...

    async def ticks(self, instrument: str, start: int, end: int) -> TickBatch:
        """Ticks with ``ts_event`` in ``[start, end)``, ordered by (``ts_event``, trade id).

        The batch's scales are fine enough for every value (PostgreSQL: the finest the ticks
        were written with); an empty batch when there are none."""
        ...

    async def gaps(self, instrument: str, start: int, end: int) -> list[FeedGap]:
        """Feed gaps of ``instrument`` overlapping ``[start, end)`` (``gap.start_ns < end``
        and ``gap.end_ns > start``), ordered by start, end and reason."""
        ...

    async def last_trades(self, instruments: Sequence[str]) -> dict[str, tuple[int, int]]:
        """The last stored trade of each of ``instruments``, by (``ts_event``, trade id), as
        ``instrument -> (trade id, ts_event)``; instruments without ticks are left out. A live
        feed resumes from it after a restart."""
        ...

    async def instruments(self) -> list[str]:
        """Every instrument with ticks, candles or feed gaps, sorted."""
        ...

    async def rejections(self, instrument: str | None = None) -> list[Rejection]:
        """Stored rejections (of one instrument, or all), oldest first."""
        ...

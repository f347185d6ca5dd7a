"""The storage writer: ``md.ticks`` (tick batches and feed gaps), ``md.candles`` and
``md.ticks.rejected`` into the store.

:func:`decode_records` is the logic and does no I/O. :class:`StorageWriter` polls, writes one
batch of records in one transaction together with the group's next offsets, and only then
commits those offsets on the bus. After a crash the bus delivers again from its last commit;
the records the store already holds (below its stored offsets) are skipped, so every tick is
stored once, every feed gap once, and every candle keeps its highest revision.

Offsets name positions in one bus's logs, so the store keeps them under the group *and* the
bus's ``cluster_id``: an in-process bus is new at every start, and its offsets start at 0 again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from core import codecs
from core.candles import Candle
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from storage.records import Rejection
from storage.repository import MarketDataStore
from streams.bus import Bus, Record, next_offsets

log = logging.getLogger(__name__)

DEFAULT_GROUP = "storage-writer"
TOPICS = (TICKS, CANDLES, TICKS_REJECTED)


@dataclass(slots=True)
class Decoded:
    """One poll's records, decoded and sorted by kind."""

    ticks: list[TickBatch] = field(default_factory=list)
    gaps: list[FeedGap] = field(default_factory=list)
    """The feed-gap markers of ``md.ticks``."""
    candles: list[Candle] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    undecodable: int = 0


def decode_records(records: Sequence[Record]) -> Decoded:
    """Decode by topic. Undecodable ticks are the engine runner's to reject; here they are
    only counted (and logged), never written."""
    decoded = Decoded()
    for record in records:
        try:
            if record.topic == TICKS:
                message = codecs.decode_ticks_message(record.value)
                if isinstance(message, FeedGap):
                    decoded.gaps.append(message)
                else:
                    decoded.ticks.append(message)
            elif record.topic == CANDLES:
                decoded.candles.append(codecs.decode_candle(record.value))
            elif record.topic == TICKS_REJECTED:
                decoded.rejections.append(rejection_of(codecs.decode_rejected(record.value)))
        except codecs.CodecError as exc:
            decoded.undecodable += 1
            log.warning("skipping %s/%d/%d: %s", record.topic, record.partition, record.offset, exc)
    return decoded


def rejection_of(message: codecs.RejectedMessage) -> Rejection:
    """A rejection as stored: the tick as JSON when there is one, else the raw input."""
    if message.tick is not None:
        payload: str | None = msgspec.json.encode(message.tick).decode()
    elif message.payload is not None:
        payload = message.payload.decode("utf-8", "backslashreplace")
    else:
        payload = None
    detail = message.detail if message.origin is None else f"{message.detail} [{message.origin}]"
    return Rejection(
        reason=message.reason,
        detail=f"{message.source}: {detail}",
        instrument=message.instrument,
        trade_id=message.trade_id,
        payload=payload,
    )


@dataclass(slots=True)
class WriterStats:
    """Running totals, for the status line."""

    writes: int = 0
    ticks: int = 0
    candles: int = 0
    rejections: int = 0
    gaps: int = 0
    skipped: int = 0  # records the store already held (a restart after a crash)
    undecodable: int = 0


@dataclass(slots=True)
class StorageWriter:
    """Writes its group's records in batches until :meth:`stop` or, after :meth:`drain`,
    until a poll finds nothing."""

    bus: Bus
    store: MarketDataStore
    group: str = DEFAULT_GROUP
    max_records: int = 1000
    poll_timeout: float = 0.2
    stats: WriterStats = field(default_factory=WriterStats)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: bool = False

    def stop(self) -> None:
        self._stopping.set()

    def drain(self) -> None:
        self._draining = True

    @property
    def offsets_key(self) -> str:
        """Whose offsets the store keeps: this group on this bus."""
        return f"{self.group}@{self.bus.cluster_id}"

    async def run(self) -> None:
        stored = await self.store.stored_offsets(self.offsets_key)
        async with self.bus.subscribe(self.group, TOPICS) as subscription:
            while not self._stopping.is_set():
                records = await subscription.poll(self.max_records, self.poll_timeout)
                if not records:
                    if self._draining:
                        break
                    continue
                fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
                self.stats.skipped += len(records) - len(fresh)
                offsets = next_offsets(records)
                if fresh:
                    await self._write(fresh, offsets)
                await subscription.commit(offsets)

    async def _write(self, records: list[Record], offsets: dict[tuple[str, int], int]) -> None:
        decoded = decode_records(records)
        report = await self.store.write(
            decoded.ticks,
            decoded.candles,
            decoded.rejections,
            gaps=decoded.gaps,
            offsets=offsets,
            group=self.offsets_key,
        )
        stats = self.stats
        stats.writes += 1
        stats.ticks += report.ticks_written
        stats.candles += report.candles_written
        stats.rejections += report.rejects_written
        stats.gaps += report.gaps_written
        stats.undecodable += decoded.undecodable

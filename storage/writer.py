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
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from core import codecs
from core.candles import Candle
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from storage.backlog import DEFAULT_MAX_BYTES, WriteBacklog
from storage.records import Rejection
from storage.repository import MarketDataStore
from storage.unavailable import DatabaseUnavailableError
from streams.bus import Bus, CommitFailedError, Offsets, Record, Subscription, next_offsets
from streams.outage import Backoff, OutageLog

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
    held: int = 0
    """Records read but not stored yet (the write buffer)."""
    held_bytes: int = 0
    peak_held: int = 0
    peak_held_bytes: int = 0
    buffer_full: bool = False
    """The buffer is full: the writer reads nothing more, and the feed is held back."""
    database_error: str | None = None
    """Why the database is unavailable, while it is; ``None`` when it is available."""


@dataclass(slots=True)
class StorageWriter:
    """Writes its group's records in batches until :meth:`stop` or, after :meth:`drain`,
    until a poll finds nothing.

    When the database is unavailable, the writer keeps reading into a
    :class:`~storage.backlog.WriteBacklog` of ``buffer_bytes`` and tries again after a
    :class:`~streams.outage.Backoff` pause; once the buffer is full it stops reading, so the
    bus holds the rest and its publishers wait. Nothing is committed on the bus before it is
    stored. When the database is back, the backlog is written oldest first, ``max_records``
    at a time, each batch with its offsets.
    """

    bus: Bus
    store: MarketDataStore
    group: str = DEFAULT_GROUP
    max_records: int = 1000
    poll_timeout: float = 0.2
    buffer_bytes: int = DEFAULT_MAX_BYTES
    log_every: float = 30.0
    stats: WriterStats = field(default_factory=WriterStats)
    backoff: Backoff = field(default_factory=Backoff)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: bool = False

    def stop(self) -> None:
        """Return from :meth:`run` at once; what is not stored is not committed either."""
        self._stopping.set()

    def drain(self) -> None:
        """Return once everything read is stored and a poll finds nothing more, or at once
        if the database is unavailable (what is held then is not stored)."""
        self._draining = True

    @property
    def offsets_key(self) -> str:
        """Whose offsets the store keeps: this group on this bus."""
        return f"{self.group}@{self.bus.cluster_id}"

    async def run(self) -> None:
        stored = await self.store.stored_offsets(self.offsets_key)
        backlog = WriteBacklog(self.buffer_bytes)
        outage = OutageLog("database", self.log_every)
        retry_at = 0.0
        # a write that failed may have committed: the retry is that very chunk (a larger one
        # would be written anew, since a chunk counts as stored only if all of it was)
        in_flight: list[Record] = []
        async with self.bus.subscribe(self.group, TOPICS) as subscription:
            while not self._stopping.is_set():
                wait = max(0.0, retry_at - time.monotonic()) if backlog else self.poll_timeout
                records = await self._read(subscription, backlog, wait)
                fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
                self.stats.skipped += len(records) - len(fresh)
                backlog.add(records, fresh)
                if not backlog:
                    if records:
                        await self._commit(subscription, backlog.stored([]))
                    elif self._draining:
                        break
                elif time.monotonic() >= retry_at:
                    chunk = in_flight = in_flight or backlog.oldest(self.max_records)
                    try:
                        await self._write(chunk, next_offsets(chunk))
                    except DatabaseUnavailableError as exc:
                        retry_at = time.monotonic() + self.backoff.next_delay()
                        self.stats.database_error = str(exc)
                        if line := outage.failed(time.monotonic(), str(exc)):
                            log.warning("%s (%s records held)", line, f"{len(backlog):,}")
                        if self._draining:
                            break
                    else:
                        in_flight = []
                        held = len(backlog)
                        await self._commit(subscription, backlog.stored(chunk))
                        self.backoff.reset()
                        self.stats.database_error = None
                        if line := outage.recovered(time.monotonic()):
                            log.warning("%s; writing the %s records held", line, f"{held:,}")
                self._count(backlog)
        if backlog:
            log.warning("stopped with %s records read but not stored", f"{len(backlog):,}")

    async def _read(
        self, subscription: Subscription, backlog: WriteBacklog, wait: float
    ) -> list[Record]:
        """A poll, or (the buffer full) a pause of ``wait`` seconds that :meth:`stop` ends."""
        if not backlog.full:
            return await subscription.poll(self.max_records, wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), wait)
        return []

    async def _commit(self, subscription: Subscription, offsets: Offsets) -> None:
        """Commit what is stored. A partition that moved to another member meanwhile (a long
        outage, a writer joining) is refused; its offsets are in the store, where the new
        owner resumes from, so that refusal is only told."""
        try:
            await subscription.commit(offsets)
        except CommitFailedError as exc:
            log.warning("offsets stored but not committed on the bus: %s", exc)

    def _count(self, backlog: WriteBacklog) -> None:
        self.stats.held = len(backlog)
        self.stats.held_bytes = backlog.bytes
        self.stats.peak_held = backlog.peak_records
        self.stats.peak_held_bytes = backlog.peak_bytes
        self.stats.buffer_full = backlog.full

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

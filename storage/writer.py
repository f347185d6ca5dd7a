"""The storage writer: ``md.ticks`` (tick batches and feed gaps), ``md.candles`` and
``md.ticks.rejected`` into the store.

It runs on the processor loop (:mod:`streams.processor`), which polls and decodes; its
durability hook, :class:`StoredInTransaction`, writes one batch of records in one transaction
together with the group's next offsets, and only then are those offsets committed on the bus.
After a crash the bus delivers again from its last commit; the records the store already
holds (below its stored offsets) are skipped, so every tick is stored once, every feed gap
once, and every candle keeps its highest revision. :func:`rows_of` (no I/O) sorts decoded
messages into what the store writes.

A record whose row the database refuses for its value
(:class:`~storage.refused.WriteRefusedError`: a NUL in text, a value out of a column's range)
must not stop the writer, or it would read that record again at every start: the batch is
written again in halves, and halves of those, until the one record refused is alone; it is
logged with its topic, partition and offset, counted (``refused``,
``mdp_writer_refused_total``) and skipped, its offset stored with the rest. Every other record
of the batch is stored, once.

Offsets name positions in one bus's logs, so the store keeps them under the group *and* the
bus's ``cluster_id``: an in-process bus is new at every start, and its offsets start at 0 again.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from core import codecs
from core.candles import Candle
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from storage.backlog import DEFAULT_MAX_BYTES, WriteBacklog
from storage.records import Rejection
from storage.refused import WriteRefusedError
from storage.repository import MarketDataStore
from storage.unavailable import DatabaseUnavailableError
from streams.bus import Bus, Offsets, Record, next_offsets
from streams.outage import Backoff, OutageLog
from streams.processor import Batch, Durability, Outcome, Processor, Round, decode_batch
from telemetry.metrics import (
    WRITER_BATCH,
    WRITER_BUFFER_BYTES,
    WRITER_BUFFER_RECORDS,
    WRITER_FAILURES,
    WRITER_REFUSED,
    WRITER_ROWS,
)

log = logging.getLogger(__name__)

DEFAULT_GROUP = "storage-writer"
WRITER_SPAN = "writer.store"
"""The span of a traced round: its records decoded and stored (with the offsets)."""
TOPICS = (TICKS, CANDLES, TICKS_REJECTED)


@dataclass(slots=True)
class Decoded:
    """Decoded records sorted by kind: what one write stores."""

    ticks: list[TickBatch] = field(default_factory=list)
    gaps: list[FeedGap] = field(default_factory=list)
    """The feed-gap markers of ``md.ticks``."""
    candles: list[Candle] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    undecodable: int = 0


def rows_of(messages: Iterable[Any]) -> Decoded:
    """Sort decoded messages by kind (``None``, an undecodable record, is only counted:
    undecodable ticks are the engine's to reject)."""
    decoded = Decoded()
    for message in messages:
        if isinstance(message, TickBatch):
            decoded.ticks.append(message)
        elif isinstance(message, Candle):
            decoded.candles.append(message)
        elif isinstance(message, FeedGap):
            decoded.gaps.append(message)
        elif isinstance(message, codecs.RejectedMessage):
            decoded.rejections.append(rejection_of(message))
        else:
            decoded.undecodable += 1
    return decoded


def decode_records(records: Sequence[Record]) -> Decoded:
    """Decode by topic (:func:`streams.processor.decode_batch`) and sort by kind."""
    return rows_of(decode_batch(records, DEFAULT_GROUP).messages)


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
    refused: int = 0
    """Records skipped because the database refused their rows (each logged)."""
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
    processor: Processor[None] = field(init=False)
    stored: StoredInTransaction = field(init=False)
    """The durability hook: what is held, and the writes."""

    def __post_init__(self) -> None:
        self.stored = stored = StoredInTransaction(
            self.store, self.offsets_key, self.stats, self.backoff,
            self.max_records, self.buffer_bytes, self.log_every,
        )  # fmt: skip
        self.processor = Processor(
            self.bus, self.group, TOPICS, _no_outputs, stored,
            max_records=self.max_records, poll_timeout=self.poll_timeout,
            trace_name=WRITER_SPAN,
        )  # fmt: skip

    def stop(self) -> None:
        """Return from :meth:`run` at once; what is not stored is not committed either."""
        self.processor.stop()

    def drain(self) -> None:
        """Return once everything read is stored and a poll finds nothing more, or at once
        if the database is unavailable (what is held then is not stored)."""
        self.processor.drain()

    def database_check(self) -> str | None:
        """The ``database`` check of ``/readyz``: ``unavailable`` while the last write failed
        (an outage: the writer holds what it read and retries), ``None`` otherwise."""
        return "unavailable" if self.stored.failing else None

    @property
    def offsets_key(self) -> str:
        """Whose offsets the store keeps: this group on this bus."""
        return f"{self.group}@{self.bus.cluster_id}"

    async def run(self) -> None:
        backlog = self.stored.backlog
        unwatch = [
            WRITER_BUFFER_RECORDS.watch(lambda: len(backlog)),
            WRITER_BUFFER_BYTES.watch(lambda: backlog.bytes),
        ]
        try:
            await self.processor.run()
        finally:
            for stop in unwatch:
                stop()


def _no_outputs(batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
    """The writer's step: it publishes nothing; its effect is the batch itself."""
    return Outcome([], None)


class StoredInTransaction(Durability[None]):
    """The writer's durability hook: the decoded records and their offsets in one store
    transaction (see :class:`StorageWriter` for the buffer and the retries)."""

    def __init__(
        self,
        store: MarketDataStore,
        offsets_key: str,
        stats: WriterStats,
        backoff: Backoff,
        max_records: int,
        buffer_bytes: int,
        log_every: float,
    ) -> None:
        self.store = store
        self.offsets_key = offsets_key
        self.stats = stats
        self.backoff = backoff
        self.max_records = max_records
        self.backlog = WriteBacklog(buffer_bytes)
        self._messages: deque[Any] = deque()
        """The decoded message of each record in the backlog, in the same order."""
        self._outage = OutageLog("database", log_every)
        self._stored: dict[tuple[str, int], int] = {}
        self._retry_at = 0.0
        self._failing = False
        # a write that failed may have committed: the retry is that very chunk (a larger one
        # would be written anew, since a chunk counts as stored only if all of it was)
        self._in_flight: list[Record] = []

    async def start(self) -> None:
        self._stored = await self.store.stored_offsets(self.offsets_key)

    def fresh(self, records: list[Record]) -> list[Record]:
        stored = self._stored
        if not stored:
            return records
        fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
        self.stats.skipped += len(records) - len(fresh)
        return fresh

    def read_wait(self, timeout: float) -> tuple[float, bool]:
        backlog = self.backlog
        wait = max(0.0, self._retry_at - time.monotonic()) if backlog else timeout
        return wait, not backlog.full

    @property
    def idle(self) -> bool:
        return not self.backlog

    @property
    def failing(self) -> bool:
        return self._failing

    async def behind(self, round: Round[None]) -> Offsets:
        backlog = self.backlog
        backlog.add(round.polled, round.batch.records)
        self._messages.extend(round.batch.messages)
        try:
            if not backlog:
                return backlog.stored([]) if round.polled else {}
            if time.monotonic() < self._retry_at:
                return {}
            return await self._write_oldest()
        finally:
            self._count()

    async def _write_oldest(self) -> Offsets:
        backlog = self.backlog
        chunk = self._in_flight = self._in_flight or backlog.oldest(self.max_records)
        messages = list(itertools.islice(self._messages, len(chunk)))
        started = time.perf_counter()
        try:
            await self._write_apart(chunk, messages)
        except DatabaseUnavailableError as exc:
            WRITER_FAILURES.inc()
            self._failing = True
            self._retry_at = time.monotonic() + self.backoff.next_delay()
            self.stats.database_error = str(exc)
            if line := self._outage.failed(time.monotonic(), str(exc)):
                log.warning("%s (%s records held)", line, f"{len(backlog):,}")
            return {}
        WRITER_BATCH.observe(time.perf_counter() - started)
        self._failing = False
        self._in_flight = []
        for _ in chunk:
            self._messages.popleft()
        held = len(backlog)
        offsets = backlog.stored(chunk)
        self.backoff.reset()
        self.stats.database_error = None
        if line := self._outage.recovered(time.monotonic()):
            log.warning("%s; writing the %s records held", line, f"{held:,}")
        return offsets

    async def _write_apart(self, records: list[Record], messages: list[Any]) -> None:
        """Store ``records`` (their decoded ``messages``) with their offsets; should the
        database refuse a value, store the halves apart, down to the one record refused,
        which is skipped: only its offsets are stored. A half written before an outage is
        not written again (its offsets are stored: the store skips it as a replay)."""
        try:
            await self._write(rows_of(messages), next_offsets(records))
        except WriteRefusedError as exc:
            if len(records) > 1:
                half = len(records) // 2
                await self._write_apart(records[:half], messages[:half])
                await self._write_apart(records[half:], messages[half:])
                return
            (record,) = records
            log.error(
                "the database refused a row of the record at %s/%d/%d; skipped it: %s",
                record.topic, record.partition, record.offset, exc,
            )  # fmt: skip
            await self._write(Decoded(), next_offsets(records))
            self.stats.refused += 1
            WRITER_REFUSED.inc()

    async def finish(self, drained: bool) -> Offsets:
        if self.backlog:
            log.warning("stopped with %s records read but not stored", f"{len(self.backlog):,}")
        return {}

    def _count(self) -> None:
        backlog, stats = self.backlog, self.stats
        stats.held = len(backlog)
        stats.held_bytes = backlog.bytes
        stats.peak_held = backlog.peak_records
        stats.peak_held_bytes = backlog.peak_bytes
        stats.buffer_full = backlog.full

    async def _write(self, decoded: Decoded, offsets: dict[tuple[str, int], int]) -> None:
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
        for kind, rows in (
            ("ticks", report.ticks_written),
            ("candles", report.candles_written),
            ("rejections", report.rejects_written),
            ("gaps", report.gaps_written),
        ):
            if rows:
                _ROWS[kind].inc(rows)


_ROWS = {kind: WRITER_ROWS.labels(kind) for kind in ("ticks", "candles", "rejections", "gaps")}

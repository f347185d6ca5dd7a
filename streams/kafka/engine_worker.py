"""The candle worker's shell around :class:`~streams.kafka.partition.PartitionEngine` s.

:class:`EngineWorker` knows nothing of Faust: whoever consumes ``md.ticks`` in a group (one of
:data:`CONSUMERS`: the batch worker of :mod:`streams.kafka.batch_worker`, the default, or the
Faust agent of :mod:`streams.kafka.faust_app`) tells it which partitions it owns
(:meth:`~EngineWorker.assign`, :meth:`~EngineWorker.revoke`), hands it the records polled
(:meth:`~EngineWorker.handle`) and calls :meth:`~EngineWorker.tick` now and then, so that
quiet instruments close on the wall clock once their partition is read to its end. Each call
is one round of the processor loop (:meth:`streams.processor.Processor.handle`): the records
are decoded once, each partition's step is run on its engine, the steps are written to the
journal (:class:`Journaled`, the write-ahead durability hook) and the broker has them before
the outputs are published, and only then does the call return: the caller acknowledges the
records (commits offsets) after that. See :mod:`streams.kafka.journal` for why a restart then
gives the same candles.

Its :class:`~streams.consumers.ConsumerWatch` (:attr:`EngineWorker.watch`: the consumer lag
metric and the ``bus`` and ``lag`` checks of ``/readyz``, once the shell adds it to
:data:`~streams.consumers.WATCHES`) is fed by :meth:`EngineWorker.tick`, on the event loop,
from what the worker itself knows rather than from Faust's consumer (whose positions live on
its own thread and run ahead of what is done): a partition's position is the next offset its
engine applies (journaled, so a restart resumes there), its end the broker's answer to the
end-offsets request the tick makes anyway, and the time of that answer is the contact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from core.engine import EngineConfig
from core.topics import TICKS
from streams.bus import Offsets, PartitionProgress, Record, TopicPartition
from streams.checkpoints import CheckpointStore
from streams.consumers import ConsumerWatch
from streams.engine_runner import DEFAULT_GROUP, ENGINE_SPAN, EngineStats, Message
from streams.kafka.admin import STEPS
from streams.kafka.bus import KafkaBus
from streams.kafka.journal import (
    Claim,
    NewerJournalError,
    PartitionCheckpoint,
    Step,
    checkpoint_name,
    decode_checkpoint,
    decode_entry,
    encode_checkpoint,
    encode_entry,
    entry_key,
)
from streams.kafka.log_limits import BrokerWatch
from streams.kafka.partition import GapError, PartitionEngine
from streams.kafka.reader import PartitionReader
from streams.kafka.settings import KafkaSettings
from streams.processor import Batch, Durability, Outcome, Processor, Round
from telemetry.tracing import headers_now

log = logging.getLogger(__name__)

CONSUMERS: Final = ("batch", "faust")
"""The shells that can drive an :class:`EngineWorker` (``mdp worker --consumer``): ``batch``
polls whole batches on the bus's own consumer (:mod:`streams.kafka.batch_worker`); ``faust``
is Faust's agent, handed one event at a time (:mod:`streams.kafka.faust_app`)."""
DEFAULT_CONSUMER: Final = "batch"
"""The consumer of ``mdp worker`` and of the benchmarks when none is asked for: measured
several times cheaper per record than Faust's delivery, the one that reaches issue 13's
2.5 M ticks/s, and as quick at 20,000 ticks/s (``docs/cluster.md``, "Which consumer to run")."""
_MS: Final = 1_000_000
_ENDS_TIMEOUT: Final = 2.0
"""Seconds the idle check waits for the broker to say where the partitions end."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """One candle worker: where Kafka is, its group, its engine, and how often it saves.

    - ``checkpoint_every``: seconds between a partition's checkpoints (recovery replays the
      steps since the last one).
    - ``idle_every``: seconds without records after which a caught-up partition's clock is
      moved on by the wall clock.
    - ``clock_offset_ns``: added to the wall clock (tests: a clock ahead makes replayed
      instruments look idle once caught up, so their last candles close at once).
    - ``batch_max``/``batch_within``: the micro-batch the Faust agent takes at a time.
    - ``poll_max``/``fetch_bytes``: the most records a poll of the batch consumer
      (:mod:`streams.kafka.batch_worker`) returns, and the most bytes of a partition one of
      its fetches brings (a backlog is read in rounds of that size; the journal and the
      publish cost per round).
    """

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    engine: EngineConfig = field(default_factory=EngineConfig)
    group: str = DEFAULT_GROUP
    checkpoint_every: float = 10.0
    idle_every: float = 1.0
    clock_offset_ns: int = 0
    batch_max: int = 256
    batch_within: float = 0.002
    poll_max: int = 2_000
    fetch_bytes: int = 8 * 1024 * 1024


@dataclass(slots=True)
class _Plan:
    engine: PartitionEngine
    step: Step


class Journaled(Durability[list[_Plan]]):
    """The worker's durability hook: each round's steps go to the journal, and the broker
    has them, *before* their outputs are published (write-ahead: a replay must reproduce
    exactly what went out, clocks included); checkpoints, saved after, only shorten
    recoveries (see :mod:`streams.kafka.journal`). Faust acknowledges the offsets once the
    round returns."""

    def __init__(self, worker: EngineWorker) -> None:
        self.worker = worker

    async def ahead(self, round: Round[list[_Plan]]) -> None:
        plans = round.outcome.effects
        offsets = await self.worker._journal([plan.step for plan in plans])
        for plan, offset in zip(plans, offsets, strict=True):
            plan.engine.journaled(offset)

    async def behind(self, round: Round[list[_Plan]]) -> Offsets:
        worker = self.worker
        for plan in round.outcome.effects:
            worker._last_step[plan.engine.partition] = time.monotonic()
            worker._maybe_checkpoint(plan.engine)
        return round.offsets


class EngineWorker:
    """Candle engines for the ``md.ticks`` partitions this process owns (see module text)."""

    def __init__(
        self,
        settings: WorkerSettings,
        bus: KafkaBus,
        reader: PartitionReader,
        checkpoints: CheckpointStore | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.reader = reader
        self.checkpoints = checkpoints
        self._clock = clock
        self.owned: dict[int, PartitionEngine] = {}
        self._recovering: dict[int, asyncio.Task[PartitionEngine]] = {}
        self._failed_recoveries: set[int] = set()
        """Partitions whose failed recovery has been told (once, until one succeeds)."""
        self._lock = asyncio.Lock()  # one step (or batch of steps) at a time
        self._reading = asyncio.Lock()  # the reader serves one partition at a time
        self._last_step: dict[int, float] = {}
        self._last_checkpoint: dict[int, float] = {}
        self._saving: dict[int, asyncio.Task[None]] = {}
        self.recoveries = 0
        self.broker = BrokerWatch(log)
        self._idle_now: set[int] = set()
        """The partitions whose clocks the current round without records moves on."""
        self.watch = ConsumerWatch(settings.group, time.monotonic())
        self._ends_heard: dict[int, int] = {}
        self._heard_ns: int | None = None
        """When the broker last said where the partitions end (Unix ns)."""
        self.processor = Processor(
            bus, settings.group, [TICKS], self._step, Journaled(self),
            clock=self.now, publisher=self._publish, trace_name=ENGINE_SPAN,
        )  # fmt: skip

    def now(self) -> int:
        return self._clock() + self.settings.clock_offset_ns

    @property
    def stats(self) -> EngineStats:
        """Totals over the partitions owned now."""
        total = EngineStats()
        for engine in self.owned.values():
            s = engine.stats
            total.batches += s.batches
            total.ticks += s.ticks
            total.gaps += s.gaps
            total.candles += s.candles
            total.rejected += s.rejected
            total.duplicates += s.duplicates
            total.undecodable += s.undecodable
            total.last_event_ns = max(total.last_event_ns, s.last_event_ns)
        return total

    # -- ownership --------------------------------------------------------------------------

    def assign(self, partitions: Iterable[int]) -> None:
        """Start recovering the partitions not owned yet (in the background)."""
        for partition in partitions:
            if partition not in self.owned and partition not in self._recovering:
                self._recovering[partition] = asyncio.create_task(
                    self._recover(partition), name=f"recover md.ticks[{partition}]"
                )

    async def own(self, partitions: set[int]) -> None:
        """A rebalance gave this worker ``partitions`` (all it has now): hand over the ones
        it had besides, start recovering the new ones."""
        await self.revoke(set(self.owned) - partitions)
        self.assign(partitions)

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Stop owning ``partitions``: save their checkpoints, drop their engines."""
        partitions = list(partitions)
        for partition in partitions:
            task = self._recovering.pop(partition, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        async with self._lock:
            for partition in partitions:
                engine = self.owned.pop(partition, None)
                if engine is not None:
                    await self._save(engine)
                    log.info("md.ticks[%d] handed over at offset %s", partition, engine.applied)

    async def wait_recovered(self) -> None:
        """Wait until every partition assigned so far is recovered (for tests and tools); a
        recovery that failed raises its failure (until the next tick starts it again)."""
        while self._recovering:
            await asyncio.wait(list(self._recovering.values()))
            for task in list(self._recovering.values()):
                if task.done() and not task.cancelled() and (failure := task.exception()):
                    raise failure
            await asyncio.sleep(0)

    async def close(self) -> None:
        """Save every partition's checkpoint and wait for the saves."""
        for task in self._recovering.values():
            task.cancel()
        for task in list(self._recovering.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._recovering.clear()
        async with self._lock:
            for engine in list(self.owned.values()):
                with contextlib.suppress(Exception):
                    await self._save(engine)
            self.owned.clear()
        for saving in list(self._saving.values()):
            with contextlib.suppress(Exception):
                await saving

    async def _engine(self, partition: int) -> PartitionEngine | None:
        engine = self.owned.get(partition)
        if engine is not None:
            return engine
        task = self._recovering.get(partition)
        if task is None:
            return None
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                return None
            raise
        except Exception:
            return None

    # -- steps ------------------------------------------------------------------------------

    async def handle(self, records: Sequence[Record]) -> None:
        """Run one step per partition over ``records`` (consecutive records of ``md.ticks``)."""
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for record in records:
            if record.topic == TICKS:
                by_partition[record.partition].append(record)
        for partition in list(by_partition):
            if await self._engine(partition) is None:
                log.debug("ignoring records of md.ticks[%d]: not owned", partition)
                del by_partition[partition]
        async with self._lock:
            fresh: list[Record] = []
            for partition, batch in sorted(by_partition.items()):
                engine = self.owned.get(partition)
                if engine is not None:
                    fresh.extend(await self._fresh(engine, batch))
            if fresh:
                await self._round(fresh, set())

    async def tick(self) -> None:
        """Move idle, caught-up partitions' clocks on by the wall clock; save due checkpoints.

        A partition is caught up when every record the broker had for it when asked has been
        applied. One that is not (its records are still on their way through the consumer,
        or a backlog is being read) is left alone: its own records move its clock on.
        """
        self._recover_again()
        looking = self.watch.due(time.monotonic(), polled=True)
        # also tells whether the broker answers
        ends = await self._ends(set(self.owned) | set(self._recovering))
        if looking:
            self.watch.look(time.monotonic(), time.time_ns(), self.progress())
        async with self._lock:
            idle = {
                partition
                for partition in self._idle()
                if (engine := self.owned[partition]).applied is not None
                and engine.applied >= ends.get(partition, engine.applied + 1)
            }
            if idle:
                await self._round([], idle)
            for engine in self.owned.values():
                self._maybe_checkpoint(engine)

    def _recover_again(self) -> None:
        """Start again each recovery that failed (the broker away while it read, say; told
        once per partition until one succeeds), but not one that met a newer worker's
        journal entry: that partition stays unowned, its lag growing and ``/readyz`` saying
        so, until this worker is replaced by the new version (told as critical, once)."""
        for partition, task in list(self._recovering.items()):
            if not task.done() or task.cancelled() or (failure := task.exception()) is None:
                continue
            if isinstance(failure, NewerJournalError):
                if partition not in self._failed_recoveries:
                    self._failed_recoveries.add(partition)
                    log.critical("md.ticks[%d] not recovered: %s", partition, failure)
                continue
            if partition not in self._failed_recoveries:
                self._failed_recoveries.add(partition)
                log.warning(
                    "md.ticks[%d]: its recovery failed (%s: %s); trying again",
                    partition, type(failure).__name__, failure,
                )  # fmt: skip
            del self._recovering[partition]
            self.assign([partition])

    async def _round(self, fresh: list[Record], idle: set[int]) -> None:
        """One round of the processor loop: the fresh records of the partitions owned
        (contiguous per partition, partitions in order), or none and the ``idle`` partitions'
        clocks to move on. A round that fails (the journal, the publish) recovers its
        partitions from the journal. A round cancelled midway (its task stopped) drops its
        partitions' engines unsaved: they may be ahead of the journal, and a checkpoint of
        them (:meth:`close`) would hold steps whose outputs never went out."""
        self._idle_now = idle
        partitions = {r.partition for r in fresh} | idle
        try:
            await self.processor.handle(fresh)
        except asyncio.CancelledError:
            for partition in partitions:
                self.owned.pop(partition, None)
            raise
        except Exception:
            log.exception("a step failed: recovering its partitions from the journal")
            for partition in partitions:
                self.owned.pop(partition, None)
                self.assign([partition])

    def progress(self) -> dict[TopicPartition, PartitionProgress]:
        """Where each partition assigned stands (no I/O): the position is the next offset its
        engine applies, the end the broker's last answer. A partition being recovered, or
        whose engine has applied nothing yet, has no end (so no lag): its position is not
        known."""
        found: dict[TopicPartition, PartitionProgress] = {}
        for partition in sorted(set(self.owned) | set(self._recovering)):
            engine = self.owned.get(partition)
            applied = None if engine is None else engine.applied
            end = None if applied is None else self._ends_heard.get(partition)
            found[TopicPartition(TICKS, partition)] = PartitionProgress(
                applied or 0, end, self._heard_ns
            )
        return found

    def _idle(self) -> set[int]:
        """The started partitions without a step for ``idle_every`` seconds."""
        quiet = time.monotonic() - self.settings.idle_every
        return {
            partition
            for partition, engine in self.owned.items()
            if engine.idle_ready and self._last_step.get(partition, 0.0) <= quiet
        }

    async def _ends(self, partitions: set[int]) -> dict[int, int]:
        """Where ``partitions`` of ``md.ticks`` end now; nothing when the broker does not say."""
        if not partitions:
            return {}
        try:
            async with asyncio.timeout(_ENDS_TIMEOUT):
                ends = await self.reader.ends(TICKS, partitions)
        except Exception as exc:  # the broker is away: no partition counts as caught up
            self.broker.failed(exc)
            return {}
        self.broker.answered()
        self._ends_heard = ends
        self._heard_ns = time.time_ns()
        return ends

    async def _fresh(self, engine: PartitionEngine, records: list[Record]) -> list[Record]:
        try:
            return engine.fresh_records(records)
        except GapError as gap:
            log.info("md.ticks[%d]: reading %s directly", engine.partition, gap)
            async with self._reading:
                missing = await self.reader.read(TICKS, engine.partition, gap.start, gap.end)
            return engine.fresh_records(missing + records)

    def _step(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[list[_Plan]]:
        """The pure step: a :class:`~streams.kafka.journal.Step` per partition, run on its
        engine (records in the batch, or the idle partitions' clocks moved on)."""
        plans: list[_Plan] = []
        messages: list[Message] = []
        records = batch.records
        if records:
            start = 0
            for end in range(1, len(records) + 1):
                if end == len(records) or records[end].partition != records[start].partition:
                    engine = self.owned[records[start].partition]
                    part = batch.slice(start, end)
                    plans.append(_Plan(engine, engine.next_step(part.records, now_ns)))
                    messages.extend(engine.run(plans[-1].step, part))
                    start = end
        else:
            for partition in sorted(self._idle_now):
                engine = self.owned[partition]
                plans.append(_Plan(engine, engine.next_step([], now_ns)))
                messages.extend(engine.run(plans[-1].step, batch))
        return Outcome(messages, plans)

    async def _journal(self, entries: Sequence[Step | Claim]) -> list[int]:
        producer = self.bus.producer
        key = entry_key(self.settings.group)
        futures = [
            await producer.send(STEPS, encode_entry(entry), key=key, partition=entry.partition)
            for entry in entries
        ]
        return [int((await future).offset) for future in futures]

    async def _publish(self, messages: list[Message]) -> None:
        producer = self.bus.producer
        stamp = time.time_ns() // _MS
        headers = list(headers_now()) or None
        futures: list[Any] = []
        for topic, key, value in messages:
            partition = self.bus.topic(topic).partition_for(key)
            futures.append(
                await producer.send(
                    topic,
                    value,
                    key=key,
                    partition=partition,
                    timestamp_ms=stamp,
                    headers=headers,
                )
            )
        for future in futures:
            await future

    # -- checkpoints and recovery -----------------------------------------------------------

    def _name(self, partition: int) -> str:
        return checkpoint_name(self.settings.group, self.bus.cluster_id, TICKS, partition)

    def _maybe_checkpoint(self, engine: PartitionEngine) -> None:
        if self.checkpoints is None:
            return
        partition = engine.partition
        last = self._last_checkpoint.get(partition, 0.0)
        running = self._saving.get(partition)
        if time.monotonic() - last < self.settings.checkpoint_every or (
            running is not None and not running.done()
        ):
            return
        self._last_checkpoint[partition] = time.monotonic()
        data = encode_checkpoint(engine.checkpoint())
        self._saving[partition] = asyncio.create_task(self._store(partition, data))

    async def _save(self, engine: PartitionEngine) -> None:
        if self.checkpoints is None:
            return
        running = self._saving.pop(engine.partition, None)
        if running is not None:
            with contextlib.suppress(Exception):
                await running
        await self._store(engine.partition, encode_checkpoint(engine.checkpoint()))

    async def _store(self, partition: int, data: bytes) -> None:
        assert self.checkpoints is not None
        try:
            await self.checkpoints.save(self._name(partition), data)
        except Exception:
            log.exception("saving the checkpoint of md.ticks[%d] failed", partition)
            raise

    async def _load(self, partition: int) -> PartitionEngine:
        config = self.settings.engine
        data = (
            None if self.checkpoints is None else await self.checkpoints.load(self._name(partition))
        )
        if data is None:
            return PartitionEngine.fresh(self.settings.group, partition, config)
        checkpoint: PartitionCheckpoint = decode_checkpoint(data)
        return PartitionEngine.restore(checkpoint, config)

    async def _recover(self, partition: int) -> PartitionEngine:
        """Checkpoint, then the journal's steps after it, then a claim of the partition."""
        started = time.monotonic()
        engine = await self._load(partition)
        key = entry_key(self.settings.group)
        last: list[Message] = []
        replayed = 0
        async with self._reading:
            first, end = await self.reader.bounds(STEPS, partition)
            if engine.journal_next < first:
                log.warning(
                    "md.ticks[%d]: the journal starts at %d, after %d where the checkpoint"
                    " continues (retention?): the steps between are lost",
                    partition,
                    first,
                    engine.journal_next,
                )
            begin = max(first, engine.journal_next)
            async for record in self.reader.scan(STEPS, partition, begin, end):
                if record.key != key:
                    continue
                try:
                    entry = decode_entry(record.value)
                except ValueError as exc:
                    log.warning("journal %d: %s", record.offset, exc)
                    continue
                if not engine.follows(entry, record.offset):
                    continue
                assert isinstance(entry, Step)
                ticks = await self._ticks(entry)
                last = engine.apply(entry, ticks, record.offset)
                replayed += 1
        claim = engine.claim()
        (offset,) = await self._journal([claim])
        engine.claimed(claim, offset)
        await self._publish(last)  # the last step's outputs may not have got out
        self.owned[partition] = engine
        self._last_step[partition] = time.monotonic()
        self._last_checkpoint.setdefault(partition, time.monotonic())
        self._recovering.pop(partition, None)
        self._failed_recoveries.discard(partition)
        self.recoveries += 1
        log.info(
            "md.ticks[%d] recovered in %.2fs: offset %s, %d steps replayed, epoch %d",
            partition,
            time.monotonic() - started,
            engine.applied,
            replayed,
            engine.epoch,
        )
        return engine

    async def _ticks(self, step: Step) -> list[Record]:
        return await self.reader.read(TICKS, step.partition, step.start, step.end)

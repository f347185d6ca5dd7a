"""The engine runner: ``md.ticks`` in; ``md.candles`` and ``md.ticks.rejected`` out.

:func:`process` is the whole logic and does no I/O: records in, messages to publish out.
:class:`EngineRunner` is the shell: it polls, publishes, saves the engine's checkpoint and
commits the offsets, in that order, so that a restart from the last checkpoint and the
committed offsets replays exactly the ticks the checkpoint has not seen. The outputs of those
ticks are published again; downstream keeps the highest revision, so that is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core import codecs
from core.engine import CandleEngine, EngineOutput
from core.gaps import FeedGap
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from streams.bus import Bus, Record, Subscription, next_offsets
from streams.checkpoints import CheckpointStore
from streams.outage import OutageLog

log = logging.getLogger(__name__)

DEFAULT_GROUP = "candle-engine"

Message = tuple[str, bytes, bytes]
"""A message to publish: topic, key, value."""


@dataclass(slots=True)
class EngineStats:
    """Running totals, for the status line."""

    batches: int = 0
    ticks: int = 0
    gaps: int = 0  # feed-gap markers applied
    candles: int = 0
    rejected: int = 0
    duplicates: int = 0
    undecodable: int = 0
    last_event_ns: int = 0

    def count(self, output: EngineOutput) -> None:
        self.candles += len(output.candles)
        self.rejected += len(output.rejected)
        self.duplicates += output.duplicates


def process(
    engine: CandleEngine,
    records: Sequence[Record],
    now_ns: int,
    stats: EngineStats,
    source: str,
    *,
    caught_up: bool = True,
) -> list[Message]:
    """Feed the records' tick batches to the engine, then move its clock on.

    ``caught_up`` says whether the shell has read its partitions to their end: only then
    does the wall clock ``now_ns`` move idle instruments on; while a backlog is read, their
    clocks follow the receipt times fed (``CandleEngine.advance``). A feed-gap record flags
    the candles over its span (``CandleEngine.mark_gap``), in its place among the
    instrument's batches. Undecodable records become rejects naming their topic, partition
    and offset.
    """
    messages: list[Message] = []
    for record in records:
        try:
            decoded = codecs.decode_ticks_message(record.value)
        except codecs.CodecError as exc:
            origin = f"{record.topic}/{record.partition}/{record.offset}"
            reject = codecs.RejectedMessage.undecodable(record.value, exc, source, origin)
            messages.append((TICKS_REJECTED, reject.key, codecs.encode_rejected(reject)))
            stats.undecodable += 1
            continue
        if isinstance(decoded, FeedGap):
            stats.gaps += 1
            _collect(engine.mark_gap(decoded, now_ns), messages, stats, source)
            continue
        stats.batches += 1
        stats.ticks += len(decoded)
        stats.last_event_ns = max(stats.last_event_ns, int(decoded.ts_event.max(initial=0)))
        _collect(engine.feed(decoded, now_ns), messages, stats, source)
    _collect(engine.advance(now_ns, caught_up=caught_up), messages, stats, source)
    return messages


def _collect(
    output: EngineOutput, messages: list[Message], stats: EngineStats, source: str
) -> None:
    stats.count(output)
    for candle in output.candles:
        messages.append((CANDLES, codecs.candle_key(candle), codecs.encode_candle(candle)))
    for rejected in output.rejected:
        reject = codecs.RejectedMessage.of_rejected_tick(rejected, source)
        messages.append((TICKS_REJECTED, reject.key, codecs.encode_rejected(reject)))


@dataclass(slots=True)
class EngineRunner:
    """Runs one engine over its group's share of ``md.ticks`` until :meth:`stop`.

    Without a checkpoint store, offsets are committed after every poll's outputs are published
    (the engine object must then outlive a restart of the runner, as in embedded mode). With
    one, the checkpoint is saved every ``checkpoint_every`` seconds and at stop, and the offsets
    are committed right after it.
    """

    bus: Bus
    engine: CandleEngine
    checkpoints: CheckpointStore | None = None
    group: str = DEFAULT_GROUP
    max_records: int = 256
    poll_timeout: float = 0.1
    checkpoint_every: float = 5.0
    clock: Callable[[], int] = time.time_ns
    input_held: Callable[[], bool] = lambda: False
    """Whether ticks are held back before the bus (a feed waiting for room on ``md.ticks``):
    then a poll that finds nothing is no sign that the input was read to its end, and the
    wall clock does not move idle instruments on."""
    stats: EngineStats = field(default_factory=EngineStats)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: bool = False
    _pending: dict[tuple[str, int], int] = field(default_factory=dict)
    _saving: asyncio.Task[bool] | None = None
    """The checkpoint being saved, in the background: a slow store never holds the engine."""
    _covered: dict[tuple[str, int], int] = field(default_factory=dict)
    """The offsets that checkpoint covers, committed once it is saved."""
    _outage: OutageLog = field(
        default_factory=lambda: OutageLog(
            "checkpoint store",
            then="the engine keeps running; offsets are committed after the next checkpoint",
        )
    )

    def stop(self) -> None:
        """Finish the current poll, checkpoint, commit and return from :meth:`run`."""
        self._stopping.set()

    def drain(self) -> None:
        """Like :meth:`stop`, but only once a poll finds nothing more to read."""
        self._draining = True

    async def run(self) -> None:
        subscription = self.bus.subscribe(self.group, [TICKS])
        async with subscription:
            last_checkpoint = time.monotonic()
            while not self._stopping.is_set():
                records = await subscription.poll(self.max_records, self.poll_timeout)
                if self._draining and not records:
                    break
                # a poll that found nothing has read every partition to its end, unless the
                # feed is held back from publishing more
                messages = process(
                    self.engine, records, self.clock(), self.stats, self.group,
                    caught_up=not records and not self.input_held(),
                )  # fmt: skip
                await self._publish(messages)
                self._pending.update(next_offsets(records))
                await self._settle(subscription, wait=False)
                due = time.monotonic() - last_checkpoint >= self.checkpoint_every
                if self.checkpoints is None or (due and self._saving is None):
                    await self._commit(subscription)
                    last_checkpoint = time.monotonic()
            await self._settle(subscription, wait=True)
            await self._commit(subscription)
            await self._settle(subscription, wait=True)

    async def _publish(self, messages: list[Message]) -> None:
        """One ``publish_many`` per topic (adapters pipeline it), order kept within each."""
        by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
        for topic, key, value in messages:
            by_topic.setdefault(topic, []).append((key, value))
        for topic, items in by_topic.items():
            await self.bus.topic(topic).publish_many(items)

    async def _commit(self, subscription: Subscription) -> None:
        """Without a checkpoint store, commit what was read. With one, start saving a
        checkpoint of the engine as it is now, in the background; :meth:`_settle` commits the
        offsets it covers once it is saved. While the store is away (or slow), the engine
        keeps running and the offsets stay uncommitted until a checkpoint is saved."""
        if self.checkpoints is None:
            if self._pending:
                await subscription.commit(self._pending)
                self._pending = {}
            return
        self._covered = dict(self._pending)
        self._saving = asyncio.create_task(
            self._save(self.checkpoints, self.engine.checkpoint()), name="checkpoint"
        )

    async def _save(self, checkpoints: CheckpointStore, data: bytes) -> bool:
        try:
            await checkpoints.save(self.group, data)
        except ConnectionError as exc:
            if line := self._outage.failed(time.monotonic(), str(exc)):
                log.warning(line)
            return False
        if line := self._outage.recovered(time.monotonic()):
            log.warning(line)
        return True

    async def _settle(self, subscription: Subscription, *, wait: bool) -> None:
        """Once the checkpoint being saved is done (``wait``: wait for it), commit what it
        covers; offsets read after it stay pending for the next one."""
        saving = self._saving
        if saving is None or not (wait or saving.done()):
            return
        self._saving = None
        if await saving and self._covered:
            await subscription.commit(self._covered)
            for partition, offset in self._covered.items():
                if self._pending.get(partition) == offset:
                    del self._pending[partition]
        self._covered = {}


async def restore_engine(
    checkpoints: CheckpointStore, group: str, make: Callable[[], CandleEngine], now_ns: int
) -> CandleEngine:
    """The engine saved under ``group``, or a new one from ``make`` when there is none.

    A restored engine restarts at the wall clock ``now_ns`` (``CandleEngine.restarted``): its
    feeds were stopped with it, as in embedded mode, whose bus does not outlive the process,
    so the time it was stopped is not time its instruments were idle.
    """
    data = await checkpoints.load(group)
    if data is None:
        return make()
    engine = make()
    restored = CandleEngine.restore(data, engine.config)
    restored.restarted(now_ns)
    log.info("engine restored from its checkpoint: %d instruments", len(restored.instruments))
    return restored

"""The engine runner: ``md.ticks`` in; ``md.candles`` and ``md.ticks.rejected`` out.

:func:`engine_step` is the whole logic and does no I/O: a decoded batch in, messages to
publish out. :class:`EngineRunner` runs it on the processor loop (:mod:`streams.processor`):
it polls, publishes, saves the engine's checkpoint (:class:`~streams.checkpoints.Checkpointed`)
and commits the offsets that checkpoint covers, in that order, so that a restart from the
last checkpoint and the committed offsets replays exactly the ticks the checkpoint has not
seen. The outputs of those ticks are published again; downstream keeps the highest revision,
so that is harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core import codecs
from core.engine import CandleEngine, EngineOutput
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from streams.bus import Bus, Record
from streams.checkpoints import Checkpointed, CheckpointStore
from streams.processor import Batch, Durability, Outcome, Output, Processor, decode_batch
from streams.retry import until_available
from telemetry.metrics import (
    ENGINE_CANDLES,
    ENGINE_EVENT_TIME,
    ENGINE_LAG,
    ENGINE_TICKS,
    count_reject,
)

log = logging.getLogger(__name__)

DEFAULT_GROUP = "candle-engine"
ENGINE_SPAN = "engine.step"
"""The span of a traced round of the engine (the embedded runner's and the Kafka worker's)."""

Message = Output
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


def engine_step(
    engine: CandleEngine,
    batch: Batch,
    now_ns: int,
    stats: EngineStats,
    source: str,
    *,
    caught_up: bool = True,
    join: bool = False,
) -> list[Message]:
    """Feed a decoded batch of ``md.ticks`` to the engine, then move its clock on.

    ``caught_up`` says whether the shell has read its partitions to their end: only then
    does the wall clock ``now_ns`` move idle instruments on; while a backlog is read, their
    clocks follow the receipt times fed (``CandleEngine.advance``). A feed gap flags the
    candles over its span (``CandleEngine.mark_gap``), in its place among the instrument's
    batches. The engine owns the rejects of ``md.ticks``: its undecodable records are
    published as rejects naming their topic, partition and offset. The metrics move once
    per call, not per tick.

    ``join`` feeds each instrument's tick batches of the call as one (:func:`joined`): the
    engine's cost is mostly per batch, so many small batches cost much more than their ticks
    joined; the candles come out as if the feed had sent the larger batches.
    """
    messages: list[Message] = []
    ticks, candles, newest = stats.ticks, stats.candles, 0
    for reject in batch.undecodable:
        messages.append((TICKS_REJECTED, reject.key, codecs.encode_rejected(reject)))
        count_reject(reject.instrument, reject.reason)
    stats.undecodable += len(batch.undecodable)
    decoded_all = [decoded for decoded in batch.messages if decoded is not None]
    stats.batches += sum(not isinstance(decoded, FeedGap) for decoded in decoded_all)
    for decoded in joined(decoded_all) if join else decoded_all:
        if isinstance(decoded, FeedGap):
            stats.gaps += 1
            _collect(engine.mark_gap(decoded, now_ns), messages, stats, source)
            continue
        stats.ticks += len(decoded)
        newest = max(newest, int(decoded.ts_event.max(initial=0)))
        _collect(engine.feed(decoded, now_ns), messages, stats, source)
    _collect(engine.advance(now_ns, caught_up=caught_up), messages, stats, source)
    _measure(stats, stats.ticks - ticks, stats.candles - candles, newest, now_ns)
    return messages


_JOIN_BOUND = 2**62
"""A join stops before the batch's largest price times its largest size times its rows
reaches this, on the batches' own scales: the engine's sums of a joined batch then stay
64-bit where the parts' did. A speed bound, not a limit: the engine moves a batch to its
instrument's finer scales first (which this pure function does not know), and sums in Python
ints what does not fit 64 bits there, so a joined batch is taken wherever its parts are."""


def joined(decoded: Sequence[TickBatch | FeedGap]) -> list[TickBatch | FeedGap]:
    """``decoded`` with each instrument's tick batches joined into one where they may be.

    Each instrument's messages keep their order; a feed gap of an instrument ends its run of
    batches (the gap goes after the run joined so far), and so does a batch of other scales,
    or one that would make the run's sums too large for 64 bits (:data:`_JOIN_BOUND`: a
    speed bound; the engine takes a batch of any length).
    Instruments are independent in the engine, so only the order across instruments may
    change. A pure function of ``decoded``: a journal's replay joins the same batches as the
    live step did.
    """
    out: list[TickBatch | FeedGap] = []
    runs: dict[str, tuple[list[TickBatch], int, int, int]] = {}
    """Per instrument: its batches not out yet, their rows, largest price and size."""

    def flush(instrument: str) -> None:
        run = runs.pop(instrument, None)
        if run is not None:
            out.append(TickBatch.concat(run[0]))

    for message in decoded:
        if isinstance(message, FeedGap):
            flush(message.instrument)
            out.append(message)
            continue
        if not len(message):
            continue
        price, size = int(message.price.max()), int(message.size.max())
        run = runs.get(message.instrument)
        if run is not None:
            parts, rows, top_price, top_size = run
            first = parts[0]
            top_price, top_size = max(top_price, price), max(top_size, size)
            rows += len(message)
            if (first.price_scale, first.size_scale) == (
                message.price_scale,
                message.size_scale,
            ) and top_price * top_size * rows < _JOIN_BOUND:
                parts.append(message)
                runs[message.instrument] = (parts, rows, top_price, top_size)
                continue
            flush(message.instrument)
        runs[message.instrument] = ([message], len(message), price, size)
    for instrument in list(runs):
        flush(instrument)
    return out


def _measure(stats: EngineStats, ticks: int, candles: int, newest: int, now_ns: int) -> None:
    """One call's ticks and candle updates into the metrics, and its lag: the wall clock
    minus the newest event time it was fed."""
    if candles:
        ENGINE_CANDLES.inc(candles)
    if not ticks:
        return
    ENGINE_TICKS.inc(ticks)
    ENGINE_LAG.observe(max(0, now_ns - newest) / 1e9)
    if newest > stats.last_event_ns:
        stats.last_event_ns = newest
        ENGINE_EVENT_TIME.set(newest / 1e9)


def process(
    engine: CandleEngine,
    records: Sequence[Record],
    now_ns: int,
    stats: EngineStats,
    source: str,
    *,
    caught_up: bool = True,
) -> list[Message]:
    """:func:`engine_step` on records not decoded yet (a journal's replay reads them so)."""
    batch = decode_batch(records, source)
    return engine_step(engine, batch, now_ns, stats, source, caught_up=caught_up)


def _collect(
    output: EngineOutput, messages: list[Message], stats: EngineStats, source: str
) -> None:
    stats.count(output)
    for candle in output.candles:
        messages.append((CANDLES, codecs.candle_key(candle), codecs.encode_candle(candle)))
    for rejected in output.rejected:
        reject = codecs.RejectedMessage.of_rejected_tick(rejected, source)
        messages.append((TICKS_REJECTED, reject.key, codecs.encode_rejected(reject)))
        count_reject(reject.instrument, reject.reason)


@dataclass(slots=True)
class EngineRunner:
    """Runs one engine over its group's share of ``md.ticks`` until :meth:`stop`.

    Without a checkpoint store, offsets are committed after every poll's outputs are published
    (the engine object must then outlive a restart of the runner, as in embedded mode). With
    one, the checkpoint is saved every ``checkpoint_every`` seconds and at stop, in the
    background, and the offsets it covers are committed once it is stored.
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
    processor: Processor[None] = field(init=False)

    def __post_init__(self) -> None:
        durability: Durability[None] = (
            Durability()
            if self.checkpoints is None
            else Checkpointed(self.checkpoints, self.group, self.engine.checkpoint,
                              self.checkpoint_every)
        )  # fmt: skip
        self.processor = Processor(
            self.bus, self.group, [TICKS], self._step, durability,
            max_records=self.max_records, poll_timeout=self.poll_timeout, clock=self.clock,
            input_held=self.input_held, trace_name=ENGINE_SPAN,
        )  # fmt: skip

    def _step(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[None]:
        messages = engine_step(
            self.engine, batch, now_ns, self.stats, self.group, caught_up=caught_up
        )
        return Outcome(messages, None)

    def stop(self) -> None:
        """Finish the current poll, checkpoint, commit and return from :meth:`run`."""
        self.processor.stop()

    def drain(self) -> None:
        """Like :meth:`stop`, but only once a poll finds nothing more to read."""
        self.processor.drain()

    async def run(self) -> None:
        await self.processor.run()


async def restore_engine(
    checkpoints: CheckpointStore, group: str, make: Callable[[], CandleEngine], now_ns: int
) -> CandleEngine:
    """The engine saved under ``group``, or a new one from ``make`` when there is none.

    A restored engine restarts at the wall clock ``now_ns`` (``CandleEngine.restarted``): its
    feeds were stopped with it, as in embedded mode, whose bus does not outlive the process,
    so the time it was stopped is not time its instruments were idle. A database that does
    not answer is waited for (:func:`~streams.retry.until_available`).
    """
    data = await until_available(
        lambda: checkpoints.load(group), f"database (the engine checkpoint {group!r})"
    )
    if data is None:
        return make()
    engine = make()
    restored = CandleEngine.restore(data, engine.config)
    restored.restarted(now_ns)
    log.info("engine restored from its checkpoint: %d instruments", len(restored.instruments))
    return restored

"""``mdp worker`` (``--consumer batch``, the default): the candle worker on the bus's own
consumer, not Faust's.

The Faust agent (:mod:`streams.kafka.faust_app`) is handed the records of ``md.ticks`` one
event at a time through Faust's stream (per record: a pair of tasks in the fetcher, an event,
a queue, the take buffer's processor and an acknowledgement), and takes what gathered within
2 ms as one round. Measured on a backlog of tick batches of about 500 ticks, that path costs
several times the CPU of the candle engine itself (``docs/scaling.md``). This shell polls
whole batches instead (:meth:`~streams.kafka.bus.KafkaSubscription.poll`, aiokafka's
``getmany``) and hands each to :meth:`~streams.kafka.engine_worker.EngineWorker.handle`: the
same rounds, journal and durability contract (decoded once, stepped, journaled, published,
and only then are the offsets committed), the same engine worker.

Rebalances reach the engine worker through :class:`~streams.kafka.bus.Rebalance`, from the
consumer's coordinator task (so possibly while a round runs: the engine worker's lock keeps
them apart): a revoked partition's checkpoint is saved, and the offsets handled of it
committed, before another member takes it, as the Faust app's rebalance signals do. A timer
task calls :meth:`~streams.kafka.engine_worker.EngineWorker.tick` (idle partitions,
checkpoints, the lag watch); a tick that fails is logged with its traceback once per
:data:`CLOCK_TRACEBACK_EVERY` and kind of failure, the repeats counted in a summary line
(:class:`~telemetry.log_limits.RepeatWindows`), and the clock goes on. Offsets are committed
at most once a second (as Faust's commit interval), in the background (no round waits for
the broker's answer; one commit in flight), and at the end: a restart or a new owner
resumes from the journal, never from them, so a later commit only means records read again and
dropped as applied. A commit waits for the broker at most ``request_timeout``: one that does
not answer is told, not waited out. A failed commit is only logged (an unexpected failure with
its traceback), never fatal: the loop goes on.

:meth:`BatchWorker.stop` (SIGTERM, SIGINT) lets the round in hand and the timer's tick in hand
finish, saves every partition's checkpoint, commits, and leaves the group: the next member
takes the partitions at once, and a restart replays no step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection
from typing import Final

from core.topics import TICKS
from streams.bus import (
    BusClosedError,
    BusError,
    CommitFailedError,
    TopicPartition,
    next_offsets,
)
from streams.checkpoints import CheckpointStore
from streams.consumers import WATCHES
from streams.kafka.bus import GroupJoinError, KafkaBus, KafkaSubscription, Rebalance
from streams.kafka.engine_worker import EngineWorker, WorkerSettings
from streams.kafka.reader import PartitionReader
from streams.processor import tell_failed_commit
from telemetry.log_limits import RepeatWindows

log = logging.getLogger(__name__)

POLL_TIMEOUT: Final = 0.1
"""Seconds a poll waits for records (how soon a stop is seen)."""
COMMIT_EVERY: Final = 1.0
"""Seconds between offset commits."""
CLOCK_STOP_WAIT: Final = 10.0
"""Seconds a stop waits for the timer's tick in hand before it cancels it."""
CLOCK_TRACEBACK_EVERY: Final = 60.0
"""Seconds within which the clock's repeated failures of one kind are counted, not logged."""


class _Ownership(Rebalance):
    """The subscription's rebalances as the engine worker's partitions of ``md.ticks``; what
    was handled of a revoked partition is committed before it goes."""

    def __init__(self, shell: BatchWorker, worker: EngineWorker) -> None:
        self.shell = shell
        self.worker = worker

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        await self.worker.revoke(_ticks(partitions))
        await self.shell.commits_settled()
        await self.shell.commit(partitions)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        await self.worker.own(_ticks(partitions))


def _ticks(partitions: set[TopicPartition]) -> set[int]:
    return {tp.partition for tp in partitions if tp.topic == TICKS}


class BatchWorker:
    """One candle worker of ``settings.group`` until :meth:`stop` (see the module text)."""

    def __init__(
        self,
        settings: WorkerSettings,
        checkpoints: Callable[[], CheckpointStore | None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._checkpoints = checkpoints
        self._monotonic = monotonic
        self._clock_failures: RepeatWindows[str] = RepeatWindows(CLOCK_TRACEBACK_EVERY)
        """The clock's failures by the exception's type (tracebacks once a window)."""
        self._stopping = asyncio.Event()
        self.worker: EngineWorker | None = None
        self._subscription: KafkaSubscription | None = None
        self._pending: dict[tuple[str, int], int] = {}
        """The next offset of each partition handled since its last commit."""
        self._committing: asyncio.Task[bool] | None = None
        """The periodic commit in flight (the rounds go on meanwhile)."""

    def stop(self, why: str = "asked to") -> None:
        """End after the current round: checkpoints saved, offsets committed, group left."""
        if not self._stopping.is_set():
            log.info("stopping (%s): checkpoints, offsets, then the group is left", why)
        self._stopping.set()

    async def run(self) -> None:
        settings = self.settings
        bus = await KafkaBus(settings.kafka, create_topics=False).start()
        try:
            async with PartitionReader(settings.kafka) as reader:
                worker = EngineWorker(settings, bus, reader, self._checkpoints())
                self.worker = worker
                forget = WATCHES.add(worker.watch)
                try:
                    subscription = bus.subscribe(
                        settings.group,
                        [TICKS],
                        rebalance=_Ownership(self, worker),
                        fetch_bytes=settings.fetch_bytes,
                    )
                    self._subscription = subscription
                    async with subscription:
                        await self._consume(worker, subscription)
                    log.info("stopped (group %s)", settings.group)
                finally:
                    forget()
        finally:
            await bus.close()

    async def _consume(self, worker: EngineWorker, subscription: KafkaSubscription) -> None:
        clock = asyncio.create_task(self._clock(worker), name="candle worker clock")
        committed = time.monotonic()
        try:
            while not self._stopping.is_set():
                try:
                    records = await subscription.poll(self.settings.poll_max, POLL_TIMEOUT)
                except (BusClosedError, GroupJoinError):
                    raise  # for good: the command tells it
                except BusError as exc:  # told as the clock's own broker checks tell it
                    worker.broker.failed(exc)
                    await asyncio.sleep(POLL_TIMEOUT)
                    continue
                if records:
                    await worker.handle(records)
                    self._pending.update(next_offsets(records))
                if (
                    self._pending
                    and time.monotonic() - committed >= COMMIT_EVERY
                    and (self._committing is None or self._committing.done())
                ):
                    self._commit_in_background()
                    committed = time.monotonic()
        finally:
            self._stopping.set()
            await _finish(clock)
            await self.commits_settled()
            saved = len(worker.owned) if worker.checkpoints is not None else 0
            await worker.close()  # checkpoints saved before the group is left
            if await self.commit():
                log.info("%d partitions' checkpoints saved, offsets committed", saved)

    def _commit_in_background(self) -> None:
        """Start the periodic commit; what it raises past :meth:`commit` (which tells the
        bus's failures) is logged when it ends, whoever waits for it or not."""
        self._committing = asyncio.create_task(self.commit(), name="commit offsets")
        self._committing.add_done_callback(_tell_commit_failure)

    async def commits_settled(self) -> None:
        """Wait for the periodic commit in flight, if any (it tells its own failures)."""
        committing = self._committing
        if committing is not None:
            await asyncio.wait([committing])

    async def commit(self, partitions: Collection[tuple[str, int]] | None = None) -> bool:
        """Commit the offsets handled (of ``partitions`` only, if given); whether all are. A
        partition gone to another member, or a broker away, is only told: the journal, not
        the offsets, says where a partition's engine stands."""
        subscription = self._subscription
        offsets = {
            tp: offset
            for tp, offset in self._pending.items()
            if partitions is None or tp in partitions
        }
        if subscription is None or not offsets:
            return True
        for tp in offsets:
            del self._pending[tp]
        try:
            async with asyncio.timeout(self.settings.kafka.request_timeout):
                await subscription.commit(offsets)
        except CommitFailedError as exc:
            log.warning("offsets stored but not committed on the bus: %s", exc)
        except (BusError, TimeoutError) as exc:
            log.warning(
                "offsets stored but not committed on the bus (the broker?): %s",
                str(exc) or type(exc).__name__,
            )
        else:
            return True
        return False

    async def _clock(self, worker: EngineWorker) -> None:
        """Tick every half ``idle_every`` until stopped (a tick in hand is finished)."""
        every = max(0.1, self.settings.idle_every / 2)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._stopping.wait()
                return
            failures = self._clock_failures
            for ended, count in failures.ended(self._monotonic()):
                self._clock_failed_more(ended, count)
            try:
                await worker.tick()
            except Exception as exc:
                kind = type(exc).__name__
                held = failures.offer(kind, self._monotonic())
                if held:
                    self._clock_failed_more(kind, held)
                if held is not None:
                    log.exception("the candle worker's clock failed; it goes on")

    def _clock_failed_more(self, kind: str, held: int) -> None:
        log.error(
            "the candle worker's clock failed %d more %s with %s within %gs; their tracebacks"
            " were not logged",
            held, "time" if held == 1 else "times", kind, self._clock_failures.every,
        )  # fmt: skip


_tell_commit_failure = tell_failed_commit(
    log, "the periodic offset commit failed unexpectedly; the rounds go on"
)
"""Logs an unexpected failure of the periodic commit (a bug: the rounds go on, the offsets it
took wait for their partitions' next records)."""


async def _finish(clock: asyncio.Task[None]) -> None:
    """Wait for the clock's tick in hand, at most :data:`CLOCK_STOP_WAIT`; then cancel it (a
    round cut short is dropped unsaved: :meth:`EngineWorker._round`)."""
    await asyncio.wait([clock], timeout=CLOCK_STOP_WAIT)
    clock.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await clock

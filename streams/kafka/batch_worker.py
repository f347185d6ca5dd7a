"""``mdp worker --consumer batch``: the candle worker on the bus's own consumer, not Faust's.

The Faust agent (:mod:`streams.kafka.faust_app`) is handed the records of ``md.ticks`` one
event at a time through Faust's stream (per record: a pair of tasks in the fetcher, an event,
a queue, the take buffer's processor and an acknowledgement), and takes what gathered within
2 ms as one round. Measured on a backlog of tick batches of about 500 ticks, that path costs
several times the CPU of the candle engine itself (``docs/scaling.md``). This shell polls
whole batches instead (:meth:`~streams.kafka.bus.KafkaSubscription.poll`, aiokafka's
``getmany``) and hands each to :meth:`~streams.kafka.engine_worker.EngineWorker.handle`: the
same rounds, journal and durability contract (decoded once, stepped, journaled, published,
and only then are the offsets committed), the same engine worker.

Rebalances reach the engine worker through :class:`~streams.kafka.bus.Rebalance`, inside the
poll that rebalances: a revoked partition's checkpoint is saved before another member takes
it, as the Faust app's rebalance signals do. A timer task calls
:meth:`~streams.kafka.engine_worker.EngineWorker.tick` (idle partitions, checkpoints, the lag
watch). Offsets are committed at most once a second (as Faust's commit interval), and at the
end: a restart or a new owner resumes from the journal, never from them, so a later commit
only means records read again and dropped as applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from core.topics import TICKS
from streams.bus import (
    BusClosedError,
    BusError,
    CommitFailedError,
    Offsets,
    TopicPartition,
    next_offsets,
)
from streams.checkpoints import CheckpointStore
from streams.consumers import WATCHES
from streams.kafka.bus import KafkaBus, KafkaSubscription, Rebalance
from streams.kafka.engine_worker import EngineWorker, WorkerSettings
from streams.kafka.reader import PartitionReader

log = logging.getLogger(__name__)

POLL_TIMEOUT: Final = 0.1
"""Seconds a poll waits for records (how soon a stop is seen)."""
COMMIT_EVERY: Final = 1.0
"""Seconds between offset commits."""


class _Ownership(Rebalance):
    """The subscription's rebalances as the engine worker's partitions of ``md.ticks``."""

    def __init__(self, worker: EngineWorker) -> None:
        self.worker = worker

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        await self.worker.revoke(_ticks(partitions))

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
    ) -> None:
        self.settings = settings
        self._checkpoints = checkpoints
        self._stopping = asyncio.Event()
        self.worker: EngineWorker | None = None

    def stop(self) -> None:
        """End after the current round: checkpoints saved, offsets committed, group left."""
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
                        rebalance=_Ownership(worker),
                        fetch_bytes=settings.fetch_bytes,
                    )
                    async with subscription:
                        await self._consume(worker, subscription)
                finally:
                    forget()
        finally:
            await bus.close()

    async def _consume(self, worker: EngineWorker, subscription: KafkaSubscription) -> None:
        clock = asyncio.create_task(self._clock(worker), name="candle worker clock")
        pending: dict[tuple[str, int], int] = {}
        committed = time.monotonic()
        try:
            while not self._stopping.is_set():
                try:
                    records = await subscription.poll(self.settings.poll_max, POLL_TIMEOUT)
                except BusClosedError:
                    raise
                except BusError as exc:  # told as the clock's own broker checks tell it
                    worker.broker.failed(exc)
                    await asyncio.sleep(POLL_TIMEOUT)
                    continue
                if records:
                    await worker.handle(records)
                    pending.update(next_offsets(records))
                if pending and time.monotonic() - committed >= COMMIT_EVERY:
                    await _commit(subscription, pending)
                    pending, committed = {}, time.monotonic()
        finally:
            clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock
            await worker.close()  # checkpoints saved before the group is left
            if pending:
                await _commit(subscription, pending)

    async def _clock(self, worker: EngineWorker) -> None:
        every = max(0.1, self.settings.idle_every / 2)
        while True:
            await asyncio.sleep(every)
            try:
                await worker.tick()
            except Exception:
                log.exception("the candle worker's clock failed; it goes on")


async def _commit(subscription: KafkaSubscription, offsets: Offsets) -> None:
    """Commit ``offsets``; a partition gone to another member, or a broker away, is only told
    (the journal, not the offsets, says where a partition's engine stands)."""
    try:
        await subscription.commit(offsets)
    except CommitFailedError as exc:
        log.warning("offsets not committed: %s", exc)
    except BusError as exc:
        log.warning("offsets not committed (the broker?): %s", exc)

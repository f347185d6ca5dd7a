"""A round of the candle worker cut short by a cancel (the task that ran it stopped midway: the
step may have run on the engine, its journal entry not yet written) leaves that partition's
engine out: closing the worker then saves no checkpoint of an engine ahead of its journal,
whose recovery would miss the outputs that never went out. The other partitions are saved."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any, cast

from core.engine import EngineConfig
from core.topics import TICKS
from streams.checkpoints import MemoryCheckpoints
from streams.kafka.engine_worker import EngineWorker, WorkerSettings
from streams.kafka.journal import checkpoint_name
from streams.kafka.partition import PartitionEngine


class Stuck:
    """A processor whose round never ends (a journal write waiting on the broker)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def handle(self, records: object) -> None:
        self.entered.set()
        await asyncio.Event().wait()


async def test_a_cancelled_round_drops_its_partitions_unsaved_and_close_saves_the_rest() -> None:
    settings = WorkerSettings()
    store = MemoryCheckpoints()
    bus = cast(Any, SimpleNamespace(cluster_id="cluster"))
    worker = EngineWorker(settings, bus, cast(Any, None), store)
    for partition in (0, 1):
        worker.owned[partition] = PartitionEngine.fresh(settings.group, partition, EngineConfig())
    stuck = Stuck()
    worker.processor = cast(Any, stuck)
    round_ = asyncio.create_task(worker._round([], {0}))
    await stuck.entered.wait()
    round_.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await round_
    assert round_.cancelled()
    assert set(worker.owned) == {1}
    await worker.close()
    assert await store.load(checkpoint_name(settings.group, "cluster", TICKS, 0)) is None
    assert await store.load(checkpoint_name(settings.group, "cluster", TICKS, 1)) is not None

"""The Faust app of ``mdp worker --consumer faust``: a thin shell that drives :class:`EngineWorker`.

Faust runs the consumer group on ``md.ticks`` (partitions spread over the workers of the
group, rebalances, offset commits). Its agent takes micro-batches of records
(``take_events``) and hands them to the engine worker, which journals each step, applies it
and publishes the candles and rejects before it returns; only then does the agent move on and
Faust acknowledge (and later commit) those offsets. A timer moves quiet partitions' clocks
on. Rebalance signals tell the engine worker which partitions it owns.

While the runtime runs, the engine worker's :class:`~streams.consumers.ConsumerWatch` is one of
the process's :data:`~streams.consumers.WATCHES` (the consumer lag metric, ``/readyz``'s
``bus`` and ``lag``); the timer feeds it (see :mod:`streams.kafka.engine_worker`).

Faust's own windowed tables are not used: they cost a table update per event and drop late
data, where the candle engine handles a batch at once with revisions for late ticks. Engine
state is kept by the journal and the checkpoints of :mod:`streams.kafka.journal`, not by a
Faust table (a table's changelog is written without waiting and keyed by the current event;
a step must be durable before its outputs go out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import faust
import mode

from core.topics import TICKS
from streams.bus import Headers, Record
from streams.checkpoints import CheckpointStore
from streams.consumers import WATCHES
from streams.kafka.bus import KafkaBus
from streams.kafka.engine_worker import EngineWorker, WorkerSettings
from streams.kafka.reader import PartitionReader

log = logging.getLogger(__name__)


class Runtime:
    """The worker's resources, opened once the app runs and closed when it stops."""

    def __init__(
        self, settings: WorkerSettings, checkpoints: Callable[[], CheckpointStore | None]
    ) -> None:
        self.settings = settings
        self._checkpoints = checkpoints
        self.worker: EngineWorker | None = None
        self._bus: KafkaBus | None = None
        self._reader: PartitionReader | None = None
        self._assigned: set[int] = set()
        self._forget: Callable[[], None] | None = None

    async def start(self) -> EngineWorker:
        if self.worker is not None:
            return self.worker
        bus = await KafkaBus(self.settings.kafka, create_topics=False).start()
        reader = PartitionReader(self.settings.kafka)
        await reader.__aenter__()
        if self.worker is not None:  # started meanwhile by another caller
            await reader.__aexit__(None, None, None)
            await bus.close()
            return self.worker
        self._bus, self._reader = bus, reader
        self.worker = EngineWorker(self.settings, bus, reader, self._checkpoints())
        self._forget = WATCHES.add(self.worker.watch)
        self.worker.assign(self._assigned)
        return self.worker

    async def stop(self) -> None:
        if self._forget is not None:
            self._forget()
        if self.worker is not None:
            await self.worker.close()
        if self._reader is not None:
            await self._reader.__aexit__(None, None, None)
        if self._bus is not None:
            await self._bus.close()

    async def assigned(self, partitions: set[int]) -> None:
        self._assigned = partitions
        worker = await self.start()
        await worker.own(partitions)

    async def revoked(self, partitions: set[int]) -> None:
        self._assigned -= partitions
        if self.worker is not None:
            await self.worker.revoke(partitions)


def _record(event: Any) -> Record:
    message = event.message
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.key or b"",
        message.value or b"",
        round(message.timestamp * 1e9),
        _headers(message.headers),
    )


def _headers(given: Any) -> Headers:
    """Faust's headers (a list of pairs, or a mapping) as the bus's."""
    if not given:
        return ()
    pairs = given.items() if isinstance(given, Mapping) else given
    return tuple((str(name), bytes(value)) for name, value in pairs)


def _ticks_partitions(tps: Any) -> set[int]:
    return {tp.partition for tp in tps if tp.topic == TICKS}


def build_app(
    settings: WorkerSettings,
    checkpoints: Callable[[], CheckpointStore | None] = lambda: None,
    datadir: Path | None = None,
) -> tuple[faust.App, Runtime]:
    """The Faust app of one candle worker, and the runtime it drives."""
    kafka = settings.kafka
    app = faust.App(
        settings.group,
        broker=[f"kafka://{server}" for server in kafka.servers],
        store="memory://",
        datadir=str(datadir) if datadir else None,
        autodiscover=False,
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=kafka.session_timeout,
        broker_heartbeat_interval=kafka.heartbeat_interval,
        broker_request_timeout=kafka.request_timeout,
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.batch_max,
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
    )
    runtime = Runtime(settings, checkpoints)
    ticks = app.topic(TICKS, key_type=bytes, value_type=bytes)

    @app.agent(ticks, name="candles")
    async def candles(stream: Any) -> None:
        worker = await runtime.start()
        async for events in stream.take_events(settings.batch_max, settings.batch_within):
            await worker.handle([_record(event) for event in events])

    async def clock() -> None:
        if runtime.worker is not None:
            await runtime.worker.tick()

    app.timer(max(0.1, settings.idle_every / 2))(clock)

    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        await runtime.assigned(_ticks_partitions(assigned))

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await runtime.revoked(_ticks_partitions(revoked))

    app.on_partitions_assigned.connect(cast(Any, on_assigned))
    app.on_partitions_revoked.connect(cast(Any, on_revoked))

    @app.service
    class Resources(mode.Service):
        async def on_stop(self) -> None:
            await runtime.stop()

    return app, runtime

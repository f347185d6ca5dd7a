"""The event log's followers: the outbox (the stored events to ``trading.events``) and the
read models' projector, in the trading process (``mdp trading serve``, the default) or in a
process of their own (``mdp trading follow``, with ``serve --followers separate``).

They share nothing with the service but the database: both read the notification log after
their tracked position, take their turn under their own advisory lock and record their new
position in the transaction of what they did. So where they run changes nothing they do: the
outbox publishes each stored event once (a repeat after a crash carries the same notification
id, as before), and two projectors of one read model, or two outboxes of one reader, take
turns. What it changes is the CPU: in the service's interpreter, each append's ``NOTIFY``
wakes two more readers of the log that compete with the orders for that one core.

Partitioned (``--partition I/N``), the followers publish only that partition's accounts, under
its reader's name (``outbox:trading.events.pIofN``): a follower process per partition, beside
its ``serve --followers separate``. The projector follows the whole log in each.

Both ride out every failure of a round (readiness checks :data:`OUTBOX_CHECK` and
:data:`PROJECTOR_CHECK` read ``unavailable`` meanwhile); either task ending (its start failed)
is a failure of the process (:class:`~trading.watch.Watch`): ``mdp trading follow`` exits 1
and its supervisor starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Final

from core.partitions import Partition
from core.topics import TRADING_EVENTS
from core.trading_events import TradingEvent
from streams.bus import Bus
from trading.readmodels.tables import DEFAULT_SCHEMA, model
from trading.service.book import unpublished
from trading.store.aio import follow
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC
from trading.watch import ProcessFailed, Watch

OUTBOX_CHECK: Final = "outbox"
PROJECTOR_CHECK: Final = "projector"
"""The readiness checks (the admin port's ``/readyz``) that read ``unavailable`` while the
outbox (``trading.events`` not published) or the projector (the read models behind) fails:
they ride out every failure, so the watch never sees one end."""


@dataclass(frozen=True, slots=True)
class FollowSettings:
    """The read models' schema and the accounts whose events this process publishes."""

    database_url: str = field(repr=False)  # its password never prints
    schema: str = DEFAULT_SCHEMA
    partition: Partition = field(default_factory=Partition)
    store_connect_timeout_s: float = 1.0


def trading_projector(database: Database, schema: str) -> Projector[TradingEvent]:
    """The service's projector: the trading read models in ``schema``."""
    return Projector(database, EventStore(database, EVENT_CODEC), model(schema))


@dataclass(frozen=True, slots=True)
class Tuning:
    """How the followers wait for the log and what they project: the defaults are the
    service's (``mdp trading serve`` and ``follow``); the benchmark (:mod:`bench.trading`)
    sets its own idle time, polling only, and a projector that times the projection."""

    idle_s: float = 2.0
    """How long the outbox and the projector wait at most when the log has nothing new."""
    listen: bool = True
    """Wake on the log's notifications (else only poll, every ``idle_s``)."""
    projector: Callable[[Database, str], Projector[TradingEvent]] = trading_projector
    """The projector of the read models in the schema it is given."""


def outbox_settings(partition: Partition) -> OutboxSettings:
    """The outbox's settings: its reader is the partition's own."""
    return OutboxSettings(name=OutboxSettings().name + partition.suffix())


def outbox_readers(notifications: NotificationLog) -> dict[Partition, int]:
    """The position of every partition's outbox reader, of any partitioning, stored so far."""
    base = OutboxSettings().name
    readers = {}
    for name, position in notifications.positions(base).items():
        partition = Partition.named(name, base)
        if partition is not None:
            readers[partition] = position
    return readers


async def start_followers(
    database: Database,
    bus: Bus,
    schema: str,
    partition: Partition,
    watch: Watch,
    stopping: asyncio.Event,
    tuning: Tuning | None = None,
) -> None:
    """Start the outbox (the partition's accounts) and the projector (``schema``) under
    ``watch``, following the log until ``stopping`` is set."""
    tuning = tuning or Tuning()
    notifications = NotificationLog(database)
    keep = unpublished(partition, await asyncio.to_thread(outbox_readers, notifications))
    settings = replace(outbox_settings(partition), idle_s=tuning.idle_s, listen=tuning.listen)
    outbox = OutboxPublisher(
        notifications, bus.topic(TRADING_EVENTS),
        settings=settings,
        keep=lambda notification: keep(str(notification.originator_id), notification.id),
    )  # fmt: skip
    watch.start("outbox", outbox.run(stopping, ready_check=OUTBOX_CHECK))
    watch.start(
        "projector",
        follow(
            tuning.projector(database, schema), stopping, tuning.idle_s, settings.retry_s,
            listen=tuning.listen, ready_check=PROJECTOR_CHECK,
        ),
    )  # fmt: skip


@contextlib.asynccontextmanager
async def following(
    settings: FollowSettings, bus: Bus, stop: asyncio.Event | None = None
) -> AsyncIterator[None]:
    """The followers running for the ``async with`` block (``mdp trading follow``). When one
    ends (its start failed) ``stop`` is set, and the block's end raises
    :class:`~trading.watch.ProcessFailed` naming it."""
    store = StoreSettings(settings.database_url, connect_timeout_s=settings.store_connect_timeout_s)
    watch = Watch(on_failure=_setter(stop))
    with Database(store) as database:
        await asyncio.to_thread(database.create_tables)
        stopping = asyncio.Event()
        await start_followers(database, bus, settings.schema, settings.partition, watch, stopping)
        try:
            yield
        finally:
            stopping.set()
            await watch.close()
    if watch.failure is not None:
        raise ProcessFailed(watch.failure.reason)


def _setter(stop: asyncio.Event | None) -> Callable[[], None]:
    return stop.set if stop is not None else lambda: None

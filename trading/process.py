"""The trading service as one process (``mdp trading serve``): the service, resumed; the paper
venue fed from ``md.ticks`` by the platform's processor loop; the commands of internal
producers consumed from ``trading.commands`` by another (:mod:`trading.commands`); the outbox
publishing to ``trading.events`` and the read models' projector following the log
(:mod:`trading.followers`; with ``ProcessSettings.followers`` off, ``mdp trading follow`` runs
them in a process of their own); and the HTTP API.

Ticks are settled in the processor's durability hook, after the round is polled and before
its offsets are committed: a crash between the two gives the same ticks again after the
restart, and :meth:`~trading.service.shell.TradingService.resume` (run before the first poll)
makes that harmless (a rebuilt order takes part only in trades after its last stored event).

Partitioned (``ProcessSettings.partition``, ``docs/trading.md``, "Partitions"), the process
serves, resumes, applies and publishes only its own accounts; its consumer groups and its
outbox's reader are its partition's own (``trading.paper.p1of2``, ``trading.commands.p1of2``,
``outbox:trading.events.p1of2``), so every instance reads every trade and every command and
publishes its own accounts' events once. A new partitioning starts its readers after what
the earlier partitions' readers published of each account (read at start: the earlier
partitioning's instances are stopped by then). The projector runs in every instance: the read
models are shared, and their projector's lock makes instances take turns.

The consumers ride out an outage of the event store that leaves the service sound (a command
that failed before the venue acted): the round stays uncommitted and the loop subscribes again
with backoff. Every task runs under a :class:`~trading.watch.Watch`: a task that ends while the
process runs, or a service that must restart (a fill, a trigger or any step after the venue acted
that the store did not take, ``restart-required``), is logged with its cause, turns
``/readyz`` (``service``) and ``/healthz`` to 503, sets the caller's ``stop``, and makes
:func:`running` raise :class:`~trading.watch.ProcessFailed` at its end: ``mdp trading serve``
exits non-zero, its supervisor restarts it, and the restart resumes every open saga from the
store (the uncommitted round of trades or commands comes again). The process never goes on
without a consumer. The outbox and the projector ride out every failure of a round (they end
only when their start fails), so a lasting one is told by their readiness checks instead
(:data:`~trading.followers.OUTBOX_CHECK`, :data:`~trading.followers.PROJECTOR_CHECK`, on
the admin port's ``/readyz``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from access.settings import TokenSettings
from certs.tls import TlsFiles
from core.partitions import Partition
from core.ticks import Tick, TickBatch
from core.topics import TICKS, TRADING_COMMANDS
from core.trading_events import TradingEvent
from streams.bus import Bus, BusClosedError, Offsets
from streams.outage import Backoff
from streams.processor import Batch, Durability, Outcome, Processor, Round
from streams.rounds import RoundFailures
from trading.commands import COMMANDS_GROUP, Applying, command_step, commands_group
from trading.followers import start_followers
from trading.http import create_app
from trading.paper.matcher import PaperMatcher
from trading.paper.settings import PaperSettings
from trading.readmodels.queries import TradingQueries
from trading.readmodels.tables import DEFAULT_SCHEMA, model
from trading.service.shell import RESTART_REQUIRED, TradingService
from trading.store.database import Database, StoreSettings
from trading.store.errors import StoreError
from trading.store.events import EventStore, Unavailable
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC
from trading.watch import ProcessFailed, Watch
from web.guard import HttpLimits
from web.server import ApiServer, serving

TICKS_GROUP = "trading.paper"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    """Where the process listens, its read models' schema, its ticks' and commands' consumer
    groups (its partition's suffix is added), how it checks tokens (``tokens``: ``jwks_url`` or
    ``keys``), whether it takes paper deposits, and the accounts it owns."""

    database_url: str = field(repr=False)  # its password never prints
    tokens: TokenSettings
    host: str = "127.0.0.1"
    port: int = 8030
    schema: str = DEFAULT_SCHEMA
    ticks_group: str = TICKS_GROUP
    commands_group: str = COMMANDS_GROUP
    paper: PaperSettings = field(default_factory=PaperSettings)
    limits: HttpLimits = field(default_factory=HttpLimits)
    deposits: bool = False
    """Paper money over ``POST /trading/v1/deposits`` (on in ``mdp up``)."""
    partition: Partition = field(default_factory=Partition)
    """The accounts this instance owns (``0/1``: every one)."""
    tls: TlsFiles | None = None
    """HTTPS, and mutual TLS with a CA (``docs/security.md``); None: plain HTTP."""
    store_connect_timeout_s: float = 1.0
    """How long an event store call waits for a connection (the library tries 10 times):
    how long an outage takes to fail a command."""

    followers: bool = True
    """The outbox and the projector in this process; False: ``mdp trading follow`` runs them
    in a process of their own (:mod:`trading.followers`)."""


def tick_step(batch: Batch, now_ns: int, caught_up: bool) -> Outcome[list[Tick]]:
    """The pure step: the trades of the batch's tick batches, in order (a feed gap, or a
    record its codec refused, is not ours)."""
    trades: list[Tick] = []
    for message in batch.messages:
        if isinstance(message, TickBatch):
            trades.extend(message.ticks())
    return Outcome([], trades)


class Settling(Durability[list[Tick]]):
    """Feeds each round's trades to the service; their offsets are committed once every fill
    they made is stored."""

    def __init__(self, service: TradingService) -> None:
        self.service = service

    async def behind(self, round: Round[list[Tick]]) -> Offsets:
        await self.service.on_ticks(round.outcome.effects)
        return round.offsets


@contextlib.asynccontextmanager
async def running(
    settings: ProcessSettings,
    bus: Bus,
    say: Callable[[str], None] = lambda _: None,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[ApiServer]:
    """The process's parts running for the ``async with`` block; its server is yielded.
    When a part fails (the module text) ``stop`` is set, and the block's end raises
    :class:`~trading.watch.ProcessFailed` naming the failure."""
    store = StoreSettings(settings.database_url, connect_timeout_s=settings.store_connect_timeout_s)
    watch = Watch(on_failure=stop.set if stop is not None else lambda: None)
    with Database(store) as database:
        await asyncio.to_thread(database.create_tables)
        partition = settings.partition
        service = TradingService(
            database, PaperMatcher(settings.paper), partition=partition,
            on_unsound=lambda reason: watch.fail(RESTART_REQUIRED, reason),
        )  # fmt: skip
        resumed = await service.resume()
        say(f"resumed {resumed} open order saga(s)")
        events: EventStore[TradingEvent] = EventStore(database, EVENT_CODEC)
        projector = Projector(database, events, model(settings.schema))
        await asyncio.to_thread(projector.start)  # the tables the queries read, before them
        ticks_group = settings.ticks_group + partition.suffix()
        ticks_failures = _store_failures(TICKS)
        ticks = Processor(bus, ticks_group, [TICKS], tick_step, Settling(service),
                          start="latest", went_through=_outage_over(ticks_failures))  # fmt: skip
        applying = Applying(service, database, settings.commands_group, bus.cluster_id)
        group = commands_group(partition, settings.commands_group)
        commands_failures = _store_failures(TRADING_COMMANDS)
        commands = Processor(
            bus, group, [TRADING_COMMANDS], command_step, applying, start="earliest",
            went_through=_outage_over(commands_failures),
        )  # fmt: skip
        stopping = asyncio.Event()
        if settings.followers:
            await start_followers(database, bus, settings.schema, partition, watch, stopping)
        watch.start(TICKS, _consume(ticks, service, stopping, ticks_failures))
        watch.start(TRADING_COMMANDS, _consume(commands, service, stopping, commands_failures))
        try:
            async with TradingQueries.open(settings.database_url, settings.schema) as queries:
                app = create_app(
                    service, queries, events, settings.tokens, bus=bus, limits=settings.limits,
                    deposits=settings.deposits, failure=lambda: watch.code,
                )  # fmt: skip
                async with serving(
                    app, settings.host, settings.port, limits=settings.limits, tls=settings.tls
                ) as server:
                    yield server
        finally:
            stopping.set()
            ticks.stop()
            commands.stop()
            await watch.close()
    if watch.failure is not None:
        raise ProcessFailed(watch.failure.reason)


def _store_failures(name: str, backoff: Backoff | None = None) -> RoundFailures:
    """The failures of consumer ``name``'s rounds that the event store out of reach causes
    while the service stays sound (:func:`_consume`): told once, then every 30 s."""
    return RoundFailures(
        f"{name}: the event store", log, expected=(StoreError, *Unavailable),
        backoff=backoff or Backoff(), then="taking the round again with backoff",
    )  # fmt: skip


def _outage_over(failures: RoundFailures) -> Callable[[int], None]:
    """A processor's ``went_through``: the first round that took records and went through
    after an outage ends it (told; the next failure starts a new outage, from the shortest
    pause). That round is the one the outage broke, given again: an empty poll proves the
    bus, not the store."""

    def went_through(taken: int) -> None:
        if taken and failures.failing:
            failures.succeeded()

    return went_through


async def _consume(
    processor: Processor[Any],
    service: TradingService,
    stopping: asyncio.Event,
    failures: RoundFailures,
) -> None:
    """A consumer's loop, until ``stopping`` (or its bus closes at the process's end).

    The event store out of reach while the service stays sound (a command that failed before
    the venue acted) ends the round uncommitted; the loop logs it (``failures``: once, then
    every 30 s) and subscribes again after a pause (its backoff), and the bus gives the round
    again (what was stored of it is skipped by its tracking); once that round has gone
    through, the end of the outage is told (:func:`_outage_over`). What leaves the service
    unsound (a trade that filled at the venue and not in the store) or anything else ends the
    task: the watch stops the process, and the restart takes the round again."""
    while not stopping.is_set():
        try:
            await processor.run()
            return
        except BusClosedError:
            return
        except (StoreError, *Unavailable) as exc:
            if service.unsound is not None:
                raise
            pause = failures.failed(exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)

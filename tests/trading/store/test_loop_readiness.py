"""The outbox and the projector ride out every failure, so the process's watch never sees them
end: their failure is on the admin port's ``/readyz`` instead (``outbox``/``projector``:
``unavailable``) for as long as it lasts, and ``ok`` once a round goes through. Before, a
persistent failure stopped ``trading.events`` (or the read models) while every check said ok."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from psycopg import Cursor
from psycopg.rows import DictRow

from core.trading_events import TradingEvent
from streams.memory import MemoryBus
from telemetry.readiness import READINESS
from tests.trading.store import read_model, toy
from tests.trading.store.topic_reads import published, store_accounts
from trading.followers import OUTBOX_CHECK, PROJECTOR_CHECK
from trading.store.aio import follow
from trading.store.database import Database
from trading.store.errors import StoreUnavailableError
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC

TOPIC = "trading.events"


class DownLog(NotificationLog):
    """A notification log whose database is away until :attr:`down` is cleared."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.down = True
        self.failures = 0

    @contextmanager
    def transaction(self) -> Iterator[Cursor[DictRow]]:
        if self.down:
            self.failures += 1
            raise StoreUnavailableError("the event store's database: connection refused")
        with super().transaction() as curs:
            yield curs


class BadEventProjector(Projector[toy.ToyEvent]):
    """A projector whose catch-up fails (a bad event, a bug) until :attr:`bad` is cleared."""

    bad = True
    failures = 0

    def catch_up(self) -> int:
        if self.bad:
            self.failures += 1
            raise ValueError("no fold for this event")
        return super().catch_up()


async def wait_until(holds: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not holds():
            await asyncio.sleep(0.01)


async def test_the_outbox_check_is_unavailable_while_its_store_fails(database: Database) -> None:
    ids = store_accounts(EventStore[TradingEvent](database, EVENT_CODEC), 2, 2)
    log = DownLog(database)
    settings = OutboxSettings(idle_s=0.05, retry_s=0.01, listen=False)
    async with MemoryBus() as bus:
        outbox = OutboxPublisher(log, bus.topic(TOPIC), settings=settings)
        stop = asyncio.Event()
        task = asyncio.create_task(outbox.run(stop, ready_check=OUTBOX_CHECK))
        await wait_until(lambda: log.failures >= 3)
        assert READINESS.checks()[OUTBOX_CHECK] == "unavailable"
        log.down = False
        await wait_until(lambda: READINESS.checks()[OUTBOX_CHECK] is None)
        messages = await published(bus, TOPIC, len(ids))
        stop.set()
        await asyncio.wait_for(task, 5)
    assert sorted(message.notification_id for message in messages) == ids
    assert OUTBOX_CHECK not in READINESS.checks()  # the loop is gone: so is its check


async def test_the_projector_check_is_unavailable_while_its_catch_up_fails(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    ids = await asyncio.to_thread(events.append, "account:1", 0, toy.history(1, 3))
    projector = BadEventProjector(database, events, read_model.model(f"{database.schema}_live"))
    stop = asyncio.Event()
    task = asyncio.create_task(
        follow(
            projector, stop, idle_s=0.05, retry_s=0.01, listen=False, ready_check=PROJECTOR_CHECK
        )
    )
    await wait_until(lambda: projector.failures >= 3)
    assert READINESS.checks()[PROJECTOR_CHECK] == "unavailable"
    projector.bad = False
    await wait_until(lambda: READINESS.checks()[PROJECTOR_CHECK] is None)
    assert await asyncio.to_thread(projector.position) == ids[-1]
    stop.set()
    await asyncio.wait_for(task, 5)
    assert PROJECTOR_CHECK not in READINESS.checks()

"""The database stops while the outbox publishes and starts again: nothing is lost, and the
repeats are only what a consumer drops by notification id."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from streams.memory import MemoryBus
from tests.storage.stoppable import StoppablePostgres
from tests.trading.store import toy
from tests.trading.store.topic_reads import deduplicated, published, store_accounts
from trading.store.database import Database, StoreSettings
from trading.store.errors import StoreUnavailableError
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings
from trading.store.wire import EVENT_CODEC

TOPIC = "trading.events"


async def caught_up(log: NotificationLog, last_id: int) -> None:
    """Return once the outbox's position is ``last_id`` (asking again through the outage)."""
    while True:
        with contextlib.suppress(StoreUnavailableError):
            if await asyncio.to_thread(log.position, OutboxSettings().name) == last_id:
                return
        await asyncio.sleep(0.1)


async def test_publishing_resumes_without_loss_after_the_database_comes_back(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        ids = store_accounts(EventStore(database, EVENT_CODEC), 6, 5)
        stopped = asyncio.Event()

        async def stop_the_database_at_the_fifteenth(notification_id: int) -> None:
            if notification_id == ids[14] and not stopped.is_set():  # once
                await asyncio.to_thread(stoppable_postgres.stop)
                stopped.set()

        async with MemoryBus() as bus:
            publisher = OutboxPublisher(
                NotificationLog(database),
                bus.topic(TOPIC),
                settings=OutboxSettings(batch=10, retry_s=0.2),
                after_publish=stop_the_database_at_the_fifteenth,
            )
            stop = asyncio.Event()
            running = asyncio.create_task(publisher.run(stop))
            await asyncio.wait_for(stopped.wait(), 30)
            await asyncio.sleep(1.0)  # the publisher meets the outage and keeps trying
            assert not running.done()
            await asyncio.to_thread(stoppable_postgres.start)
            await asyncio.wait_for(caught_up(NotificationLog(database), ids[-1]), 60)
            stop.set()
            await asyncio.wait_for(running, 30)
            messages = await published(bus, TOPIC, len(ids))
        assert sorted(m.notification_id for m in deduplicated(messages)) == ids
        # the batch in flight at the outage (ids 11 to 20) came twice: its claim was rolled back
        assert len(messages) == len(ids) + 10


def test_an_append_while_the_database_is_down_fails_with_our_code_and_stores_nothing(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    with Database(StoreSettings(url, connect_timeout_s=0.2)) as database:
        database.create_tables()
        events = EventStore(database, toy.CODEC)
        events.append("account:1", 0, [toy.Opened(1)])
        stoppable_postgres.stop()
        with pytest.raises(StoreUnavailableError) as caught:
            events.append("account:1", 1, [toy.Deposited(1, 5)])
        assert caught.value.code == "store-unavailable"
        stoppable_postgres.start()
        assert [item.event for item in events.read("account:1")] == [toy.Opened(1)]
        events.append("account:1", 1, [toy.Deposited(1, 5)])  # the same append, now stored
        assert len(events.read("account:1")) == 2

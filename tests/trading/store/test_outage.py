"""The database stops while the outbox publishes and starts again: nothing is lost, and the
repeats are only what a consumer drops by notification id."""

from __future__ import annotations

import asyncio

from streams.memory import MemoryBus
from tests.storage.stoppable import StoppablePostgres
from tests.trading.store import toy
from tests.trading.store.topic_reads import deduplicated, published
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings

TOPIC = "trading.events"


async def test_publishing_resumes_without_loss_after_the_database_comes_back(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        events = EventStore(database, toy.CODEC)
        ids: list[int] = []
        for account in range(1, 7):
            ids += events.append(f"account:{account}", 0, toy.history(account, 4))
        stopped = asyncio.Event()

        async def stop_the_database_at_the_fifteenth(notification_id: int) -> None:
            if notification_id == ids[14]:
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
            log = NotificationLog(database)
            for _ in range(300):
                if await asyncio.to_thread(log.position, publisher.settings.name) == ids[-1]:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.wait_for(running, 30)
            messages = await published(bus, TOPIC, len(ids))
        assert sorted(m.notification_id for m in deduplicated(messages)) == ids
        # at most the batch in flight at the outage comes twice (its position may not have
        # been recorded before the database went away)
        assert len(ids) <= len(messages) <= len(ids) + 10

"""A trading process for the kill -9 tests: it stores events, then publishes them to Kafka,
and stops dead at the point named on its command line (it prints ``ready`` there and sleeps
until the test kills it with SIGKILL).

``python -m tests.trading.store.outbox_child URL BOOTSTRAP TOPIC ACCOUNTS POINT`` where POINT
is ``stored`` (after the events are committed, before any is published) or ``published:K``
(after the K-th record is on the topic, before the position is recorded).
"""

from __future__ import annotations

import asyncio
import sys
import time

from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.trading.store.topic_reads import store_accounts
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher
from trading.store.wire import EVENT_CODEC


def halt() -> None:
    print("ready", flush=True)
    while True:
        time.sleep(60)


async def main(url: str, bootstrap: str, topic: str, accounts: int, point: str) -> None:
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        store_accounts(EventStore(database, EVENT_CODEC), accounts, 5)
        if point == "stored":
            halt()
        published = 0
        limit = int(point.removeprefix("published:"))

        async def stop_after_k(_: int) -> None:
            nonlocal published
            published += 1
            if published == limit:
                halt()

        async with KafkaBus(KafkaSettings(bootstrap)) as bus:
            publisher = OutboxPublisher(
                NotificationLog(database),
                bus.topic(topic),
                after_publish=stop_after_k,
            )
            await publisher.drain()


if __name__ == "__main__":
    url, bootstrap, topic, accounts, point = sys.argv[1:]
    asyncio.run(main(url, bootstrap, topic, int(accounts), point))

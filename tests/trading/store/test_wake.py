"""The followers wake on the log's notification of an append, long before their fallback poll
would have read it, and still do after the database stopped and started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from eventsourcing.persistence import Notification

from streams.memory import MemoryBus
from tests.storage.stoppable import StoppablePostgres
from tests.trading.store import read_model, toy
from trading.store.aio import follow
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings
from trading.store.projector import Projector

FALLBACK_S = 5.0
"""The followers' poll interval: long, so that only a notification makes them quick."""
WITHIN_S = FALLBACK_S / 3


class Seen:
    """When each notification id was published and projected (monotonic seconds)."""

    def __init__(self) -> None:
        self.published: dict[int, float] = {}
        self.projected: dict[int, float] = {}

    async def on_publish(self, notification_id: int) -> None:
        self.published[notification_id] = time.monotonic()

    def on_project(self, notification_id: int) -> None:
        self.projected[notification_id] = time.monotonic()

    async def both(self, notification_id: int, timeout: float) -> float:
        """Seconds from now until ``notification_id`` was both published and projected."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if notification_id in self.published and notification_id in self.projected:
                return max(self.published[notification_id], self.projected[notification_id])
            await asyncio.sleep(0.005)
        raise AssertionError(f"notification {notification_id} not followed in {timeout} s")


def raw(notification: Notification) -> tuple[bytes, bytes]:
    """A record of the notification's id only (the toy events are no trading events)."""
    return b"toy", str(notification.id).encode()


@asynccontextmanager
async def following(database: Database, seen: Seen) -> AsyncIterator[None]:
    """The outbox and a projector following ``database``'s log, polling every FALLBACK_S."""
    events = EventStore(database, toy.CODEC)
    projector = Projector(
        database, events, read_model.model(f"{database.schema}_live"),
        after_project=seen.on_project,
    )  # fmt: skip
    async with MemoryBus() as bus:
        outbox = OutboxPublisher(
            NotificationLog(database), bus.topic("trading.events"), wire=raw,
            settings=OutboxSettings(idle_s=FALLBACK_S, retry_s=0.2),
            after_publish=seen.on_publish,
        )  # fmt: skip
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(outbox.run(stop)),
            asyncio.create_task(follow(projector, stop, idle_s=FALLBACK_S, retry_s=0.2)),
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def listening(url: str, listeners: int, timeout: float = 20.0) -> None:
    """Return once ``listeners`` connections LISTEN on the events table's channel."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE 'LISTEN %trading_events%'"
                )
                row = await cur.fetchone()
                if row is not None and row[0] >= listeners:
                    return
        except psycopg.OperationalError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{listeners} listeners not seen in {timeout} s")


async def woken_within(database: Database, seen: Seen, account: int) -> float:
    """Append to a new account once the followers are idle; seconds until both followed it."""
    events = EventStore(database, toy.CODEC)
    first = await asyncio.to_thread(events.append, f"account:{account}", 0, [toy.Opened(account)])
    await seen.both(first[-1], 2 * FALLBACK_S)  # however it came, the followers are now idle
    await asyncio.sleep(0.2)
    appended = time.monotonic()
    burst = toy.history(account, 20)[1:]
    ids = await asyncio.to_thread(events.append, f"account:{account}", 1, burst)
    return await seen.both(ids[-1], FALLBACK_S) - appended


async def test_an_append_wakes_the_followers_long_before_their_poll(database: Database) -> None:
    seen = Seen()
    async with following(database, seen):
        await listening(database.settings.url, 2)
        for account in (1, 2, 3):
            assert await woken_within(database, seen, account) < WITHIN_S


async def test_the_followers_listen_again_after_the_database_restarts(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    with Database(StoreSettings(url, connect_timeout_s=0.2)) as database:
        database.create_tables()
        seen = Seen()
        async with following(database, seen):
            await listening(url, 2)
            assert await woken_within(database, seen, 1) < WITHIN_S
            await asyncio.to_thread(stoppable_postgres.stop)
            await asyncio.sleep(1.0)  # the followers meet the outage
            await asyncio.to_thread(stoppable_postgres.start)
            await listening(url, 2)
            assert await woken_within(database, seen, 2) < WITHIN_S

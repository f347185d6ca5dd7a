"""The outbox publisher: the log reaches the topic after it is stored, none lost, repeats
recognisable by their notification id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from streams.memory import MemoryBus
from tests.trading.store import toy
from tests.trading.store.topic_reads import deduplicated, published
from trading.store.database import Database
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings, account_key
from trading.store.wire import Deduplicator, Published, decode_published

TOPIC = "trading.events"


class CrashError(Exception):
    """The fault hook's stand-in for a process that dies."""


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    async with MemoryBus() as memory:
        yield memory


def store_accounts(events: EventStore[toy.ToyEvent], accounts: int, deposits: int) -> list[int]:
    ids: list[int] = []
    for account in range(1, accounts + 1):
        ids += events.append(f"account:{account}", 0, toy.history(account, deposits))
    return ids


async def test_every_stored_event_is_published_once_with_its_notification_id(
    database: Database, events: EventStore[toy.ToyEvent], bus: MemoryBus
) -> None:
    ids = store_accounts(events, 3, 4)
    publisher = OutboxPublisher(NotificationLog(database), bus.topic(TOPIC))
    assert await publisher.drain() == len(ids)
    assert await publisher.drain() == 0
    messages = await published(bus, TOPIC, len(ids))
    assert sorted(message.notification_id for message in messages) == ids
    first = min(messages, key=lambda message: message.notification_id)
    assert (first.aggregate_id, first.version, first.topic) == ("account:1", 1, "opened")
    assert toy.CODEC.decode(first.topic, first.event) == toy.Opened(1)


async def test_records_are_keyed_by_account_and_in_order_on_each_key(
    database: Database, events: EventStore[toy.ToyEvent], bus: MemoryBus
) -> None:
    store_accounts(events, 4, 3)
    topic = bus.topic(TOPIC)
    await OutboxPublisher(NotificationLog(database), topic, key_of=account_key).drain()
    async with bus.subscribe("check", [TOPIC]) as subscription:
        records = await subscription.poll(1000, timeout=1.0)
    by_key: dict[bytes, list[Published]] = {}
    for record in records:
        assert record.partition == topic.partition_for(record.key)
        by_key.setdefault(record.key, []).append(decode_published(record.value))
    assert sorted(by_key) == [f"account:{n}".encode() for n in range(1, 5)]
    for messages in by_key.values():
        assert [message.version for message in messages] == [1, 2, 3, 4]


async def test_events_stored_while_no_publisher_ran_are_published_on_restart(
    database: Database, events: EventStore[toy.ToyEvent], bus: MemoryBus
) -> None:
    log = NotificationLog(database)
    first = store_accounts(events, 1, 2)
    await OutboxPublisher(log, bus.topic(TOPIC)).drain()
    later = events.append("account:9", 0, toy.history(9, 2))  # stored; the publisher is down
    assert await OutboxPublisher(log, bus.topic(TOPIC)).drain() == len(later)
    messages = await published(bus, TOPIC, len(first + later))
    assert sorted(message.notification_id for message in messages) == first + later


async def test_a_crash_between_publishing_and_tracking_repeats_only_what_a_consumer_drops(
    database: Database, events: EventStore[toy.ToyEvent], bus: MemoryBus
) -> None:
    ids = store_accounts(events, 1, 9)
    log = NotificationLog(database)

    async def crash_at_the_fourth(notification_id: int) -> None:
        if notification_id == ids[3]:
            raise CrashError

    crashing = OutboxPublisher(log, bus.topic(TOPIC), after_publish=crash_at_the_fourth)
    with pytest.raises(CrashError):
        await crashing.drain()
    assert log.position(crashing.settings.name) == 0  # nothing tracked: all four come again
    await OutboxPublisher(log, bus.topic(TOPIC)).drain()
    messages = await published(bus, TOPIC, len(ids) + 4)
    assert len(messages) == len(ids) + 4
    assert [message.notification_id for message in deduplicated(messages)] == ids


async def test_the_publisher_runs_until_stopped_and_follows_new_events(
    database: Database, events: EventStore[toy.ToyEvent], bus: MemoryBus
) -> None:
    publisher = OutboxPublisher(NotificationLog(database), bus.topic(TOPIC))
    stop = asyncio.Event()
    running = asyncio.create_task(publisher.run(stop))
    ids = await asyncio.to_thread(store_accounts, events, 2, 3)
    messages = await published(bus, TOPIC, len(ids))
    stop.set()
    await asyncio.wait_for(running, 5)
    assert sorted(message.notification_id for message in messages) == ids


@pytest.mark.parametrize(
    ("aggregate_id", "key"),
    [
        ("account:42", b"account:42"),
        ("order:42:0b7c6c1e-5e8a-4b7e-9d0e-1f2a3b4c5d6e", b"account:42"),
        ("saga:42:7", b"account:42"),
        ("lonely", b"lonely"),
        ("odd:", b"odd:"),
    ],
)
def test_records_of_one_account_share_a_key(aggregate_id: str, key: bytes) -> None:
    assert account_key(aggregate_id) == key


def test_the_deduplicator_drops_an_id_it_has_seen_on_a_key() -> None:
    seen = Deduplicator()
    message = Published(notification_id=5, aggregate_id="a", version=1, topic="t", event=b"")
    assert seen.is_new(b"k", message)
    assert not seen.is_new(b"k", message)
    assert seen.is_new(b"other", message)


async def test_two_instances_of_one_publisher_take_turns_and_publish_each_event_once(
    database: Database, events: EventStore[toy.ToyEvent], bus: MemoryBus
) -> None:
    ids = store_accounts(events, 4, 6)
    settings = OutboxSettings(batch=3)
    instances = [
        OutboxPublisher(NotificationLog(database), bus.topic(TOPIC), settings=settings)
        for _ in range(2)
    ]
    counts = await asyncio.gather(*(instance.drain() for instance in instances))
    assert sum(counts) == len(ids)
    messages = await published(bus, TOPIC, len(ids))
    assert sorted(message.notification_id for message in messages) == ids

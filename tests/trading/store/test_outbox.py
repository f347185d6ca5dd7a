"""The outbox publisher: the log reaches the topic after it is stored, none lost, repeats
recognisable by their notification id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from core.trading_events import FundsDeposited, KillSwitchSet, TradingEvent, decode_record
from streams.memory import MemoryBus
from tests.trading.store.topic_reads import deduplicated, history, published, store_accounts
from trading.store.database import Database
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings
from trading.store.wire import EVENT_CODEC

TOPIC = "trading.events"


class CrashError(Exception):
    """The fault hook's stand-in for a process that dies."""


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    async with MemoryBus() as memory:
        yield memory


@pytest.fixture
def events(database: Database) -> EventStore[TradingEvent]:
    return EventStore(database, EVENT_CODEC)


async def test_every_stored_event_is_published_once_with_its_notification_id(
    database: Database, events: EventStore[TradingEvent], bus: MemoryBus
) -> None:
    ids = store_accounts(events, 3, 4)
    publisher = OutboxPublisher(NotificationLog(database), bus.topic(TOPIC))
    assert await publisher.drain() == len(ids)
    assert await publisher.drain() == 0
    messages = await published(bus, TOPIC, len(ids))
    assert sorted(message.notification_id for message in messages) == ids
    first = min(messages, key=lambda message: message.notification_id)
    assert (first.aggregate_id, first.version) == ("account:1", 1)
    assert first.event == FundsDeposited(account=1, currency="USDT", amount=Decimal(1), ts=1)
    third = sorted(messages, key=lambda message: message.notification_id)[2]
    assert (third.version, third.event) == (3, KillSwitchSet(account=1, on=True, ts=3))


async def test_records_are_keyed_by_account_and_in_order_on_each_key(
    database: Database, events: EventStore[TradingEvent], bus: MemoryBus
) -> None:
    store_accounts(events, 4, 3)
    topic = bus.topic(TOPIC)
    await OutboxPublisher(NotificationLog(database), topic).drain()
    async with bus.subscribe("check", [TOPIC]) as subscription:
        records = await subscription.poll(1000, timeout=1.0)
    by_key: dict[bytes, list[int]] = {}
    for record in records:
        assert record.partition == topic.partition_for(record.key)
        message = decode_record(record.value)
        assert record.key == str(message.event.account).encode()
        by_key.setdefault(record.key, []).append(message.version)
    assert sorted(by_key) == [str(n).encode() for n in range(1, 5)]
    for versions in by_key.values():
        assert versions == [1, 2, 3]


async def test_events_stored_while_no_publisher_ran_are_published_on_restart(
    database: Database, events: EventStore[TradingEvent], bus: MemoryBus
) -> None:
    log = NotificationLog(database)
    first = store_accounts(events, 1, 2)
    await OutboxPublisher(log, bus.topic(TOPIC)).drain()
    later = events.append("account:9", 0, history(9, 2))  # stored; the publisher is down
    assert await OutboxPublisher(log, bus.topic(TOPIC)).drain() == len(later)
    messages = await published(bus, TOPIC, len(first + later))
    assert sorted(message.notification_id for message in messages) == first + later


async def test_a_crash_between_publishing_and_tracking_repeats_only_what_a_consumer_drops(
    database: Database, events: EventStore[TradingEvent], bus: MemoryBus
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
    database: Database, events: EventStore[TradingEvent], bus: MemoryBus
) -> None:
    publisher = OutboxPublisher(NotificationLog(database), bus.topic(TOPIC))
    stop = asyncio.Event()
    running = asyncio.create_task(publisher.run(stop))
    ids = await asyncio.to_thread(store_accounts, events, 2, 3)
    messages = await published(bus, TOPIC, len(ids))
    stop.set()
    await asyncio.wait_for(running, 5)
    assert sorted(message.notification_id for message in messages) == ids


async def test_two_instances_of_one_publisher_take_turns_and_publish_each_event_once(
    database: Database, events: EventStore[TradingEvent], bus: MemoryBus
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

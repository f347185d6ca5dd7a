"""What the service stores reaches ``trading.events`` through the outbox as one record per
event, decoded by the topic's registered codec, keyed by account and in order."""

from __future__ import annotations

from core.topic_codecs import codec_for
from core.topics import TRADING_EVENTS
from streams.memory import MemoryBus
from tests.trading.service.scenario import ACCOUNT, Session, no_fault
from trading.service.book import aggregate_id
from trading.store.database import Database
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher
from trading.store.wire import EVENT_CODEC


async def test_the_saga_s_events_are_published_once_each_in_order_under_the_account(
    database: Database,
) -> None:
    await Session(database, no_fault).run()
    stored = EventStore(database, EVENT_CODEC).read(aggregate_id(ACCOUNT))
    async with MemoryBus() as bus:
        await OutboxPublisher(NotificationLog(database), bus.topic(TRADING_EVENTS)).drain()
        async with bus.subscribe("check", [TRADING_EVENTS]) as subscription:
            records = await subscription.poll(10_000, timeout=1.0)
    codec = codec_for(TRADING_EVENTS)
    assert {record.key for record in records} == {str(ACCOUNT).encode()}
    published = [codec.decode(record.value) for record in records]
    assert [(r.aggregate_id, r.version, r.event) for r in published] == [
        (item.aggregate_id, item.version, item.event) for item in stored
    ]
    ids = [r.notification_id for r in published]
    assert ids == sorted(set(ids))

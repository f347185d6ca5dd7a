"""kill -9 of a real trading process between storing and publishing: after the publisher
restarts, the Kafka topic has every stored event, each once by notification id."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.trading.kill import kill_when_ready
from tests.trading.store.topic_reads import deduplicated, published
from trading.store.database import Database, StoreSettings
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher

ACCOUNTS = 3
EVENTS = ACCOUNTS * 5


def run_until_killed(url: str, bootstrap: str, topic: str, point: str) -> None:
    module = "tests.trading.store.outbox_child"
    assert kill_when_ready(module, url, bootstrap, topic, str(ACCOUNTS), point) == []


def stored_ids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT notification_id FROM trading_events ORDER BY 1").fetchall()
    return [notification_id for (notification_id,) in rows]


@pytest.mark.parametrize(("point", "repeats"), [("stored", 0), ("published:7", 7)])
async def test_a_kill_between_storing_and_publishing_loses_and_doubles_no_event(
    fresh_database: str, kafka_bootstrap: str, point: str, repeats: int
) -> None:
    topic = f"trading.events.test-{uuid.uuid4().hex[:8]}"
    run_until_killed(fresh_database, kafka_bootstrap, topic, point)
    ids = stored_ids(fresh_database)
    assert len(ids) == EVENTS  # the events were committed before the kill
    with Database(StoreSettings(fresh_database)) as database:
        async with KafkaBus(KafkaSettings(kafka_bootstrap)) as bus:
            restarted = OutboxPublisher(NotificationLog(database), bus.topic(topic))
            await restarted.drain()
            messages = await published(bus, topic, EVENTS + repeats)
    # the records the killed process published before its position was recorded come again
    assert len(messages) == EVENTS + repeats
    assert sorted(message.notification_id for message in deduplicated(messages)) == ids

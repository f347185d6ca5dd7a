"""A bus that refuses publishes for a while (Kafka away longer than its request timeout): the
publisher tries the same record again with backoff, tells the outage once and its end once,
reads ``blocked`` meanwhile, and loses nothing; a record too large is the caller's at once."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

import pytest

from core import codecs
from core.topics import TICKS
from ingest.publisher import FeedEvent, FeedPublisher
from streams.bus import BusError, Headers, MessageTooLargeError, Record
from streams.memory import MemoryBus
from streams.memory.bus import MemoryTopic
from streams.outage import Backoff
from tests.ingest.test_publisher import batch, read_all

FAST = functools.partial(Backoff, first=0.01, most=0.02)


async def feed(count: int) -> AsyncIterator[FeedEvent]:
    for i in range(count):
        yield batch(i * 10, 3)


def refusing(topic: MemoryTopic, error: BusError, times: int) -> list[int]:
    """Make ``topic`` refuse its next ``times`` publishes with ``error``; the attempts made."""
    attempts: list[int] = []
    publish = topic.publish

    async def flaky(key: bytes, value: bytes, *, headers: Headers = ()) -> Record:
        attempts.append(len(attempts))
        if len(attempts) <= times:
            raise error
        return await publish(key, value, headers=headers)

    topic.publish = flaky  # type: ignore[method-assign]
    return attempts


async def test_a_publish_the_bus_refuses_a_while_is_tried_again_and_nothing_is_lost() -> None:
    bus = MemoryBus(partitions=1)
    attempts = refusing(
        bus.topic(TICKS), BusError("publishing to md.ticks failed: KafkaTimeoutError"), 4
    )
    said: list[tuple[str, str | None]] = []  # each line, and the bus check as it was told
    publisher = FeedPublisher(bus, backoff=FAST)
    publisher.say = lambda line: said.append((line, publisher.bus_state(0.0)))
    await asyncio.wait_for(publisher.run(feed(3)), 5)
    records = await read_all(bus, TICKS)
    await bus.close()

    assert len(attempts) == 3 + 4
    ids = [
        tick.trade_id
        for record in records
        for tick in codecs.decode_tick_batch(record.value).ticks()
    ]
    assert ids == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    lines = [line for line, _ in said]
    assert lines[0] == (
        "bus unavailable (publishing to md.ticks failed: KafkaTimeoutError);"
        " holding the feed back, retrying"
    )
    assert lines[1].startswith("bus available again after ")
    assert len(lines) == 2, lines  # not a line per attempt
    assert said[0][1] == "blocked"  # the publish under way is waiting
    assert publisher.bus_state(0.0) is None
    assert (publisher.stats.batches, publisher.stats.ticks) == (3, 9)


async def test_a_record_too_large_is_not_tried_again() -> None:
    bus = MemoryBus(partitions=1)
    attempts = refusing(bus.topic(TICKS), MessageTooLargeError("record of 2 MB"), 1)
    publisher = FeedPublisher(bus, say=lambda _: None, backoff=FAST)
    with pytest.raises(MessageTooLargeError):
        await asyncio.wait_for(publisher.run(feed(1)), 5)
    await bus.close()
    assert len(attempts) == 1
    assert publisher.bus_state(0.0) is None

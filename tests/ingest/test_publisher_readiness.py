"""Ingest's ``bus`` check: ``blocked`` once a publish has waited ``--ready-stale`` seconds
(here on the in-process bus, full because its consumer does not commit), and ``None`` again
once the bus takes the batches; a tick file or the synthetic market needs no ``feed`` check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from core.topics import TICKS
from ingest.publisher import FeedEvent, FeedPublisher
from ingest.sources import feed_state
from streams.memory import MemoryBus
from tests.ingest.test_publisher import batch

STALE = 0.2


async def feed(count: int) -> AsyncIterator[FeedEvent]:
    for i in range(count):
        yield batch(i * 10, 1)


async def test_a_publish_that_waits_too_long_is_blocked_until_the_bus_takes_it_again() -> None:
    async with MemoryBus(partitions=1, capacity=2) as bus, bus.subscribe("slow", [TICKS]) as sub:
        publisher = FeedPublisher(bus)
        assert publisher.bus_state(STALE) is None
        publishing = asyncio.create_task(publisher.run(feed(5)))
        while bus.waiting_publishers == 0:
            await asyncio.sleep(0.01)
        assert publisher.bus_state(STALE) is None, "a short wait is backpressure, not an outage"
        await asyncio.sleep(STALE * 1.5)
        assert publisher.bus_state(STALE) == "blocked"
        while not publishing.done():  # the consumer comes back: it reads and commits
            records = await sub.poll(10, 0.05)
            if records:
                await sub.commit({(TICKS, 0): records[-1].offset + 1})
        await publishing
        assert publisher.bus_state(STALE) is None
        assert publisher.stats.batches == 5


def test_a_feed_that_is_no_live_venue_needs_nothing() -> None:
    assert feed_state(feed(1)) is None

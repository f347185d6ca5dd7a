"""Stopping the platform's feeds: a live venue hands over what it still holds (the ticks it
received, the gaps still open) before it ends; other feeds are cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from core import codecs
from core.gaps import FeedGap, GapReason
from core.ticks import TickBatch
from core.topics import TICKS
from ingest import sources
from ingest.publisher import FeedEvent, FeedPublisher
from streams.memory import MemoryBus
from tests.ingest.venues.fakes.kraken import SYMBOL, KrakenScript
from tests.ingest.venues.fakes.server import FakeVenue, Faults
from tests.ingest.venues.harness import KRAKEN, settings, trade_ids_per_frame

WAIT = 10.0


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_stopped_venue_publishes_the_outage_no_trade_closed_before_it_ends(
    shared_data: Path,
) -> None:
    script = KrakenScript.from_file(shared_data)
    ids = trade_ids_per_frame(KRAKEN, script.frames())
    last = 40
    received = sum(len(frame) for frame in ids[: last + 1])
    async with MemoryBus(partitions=1) as bus:
        publisher = FeedPublisher(bus)
        async with FakeVenue(script, Faults(stall_after={last})) as venue:
            source = sources.venue("kraken", [SYMBOL], settings(venue.url), publisher.reject)
            feeding = asyncio.create_task(publisher.run(source))
            await until(lambda: publisher.stats.ticks == received)
        # the venue is gone: every reconnect is refused, the outage stays open
        await until(lambda: source.feed.counters.reconnects >= 2)
        await sources.stop_feeding(feeding, source)
        async with bus.subscribe("reader", [TICKS]) as reader:
            records = await reader.poll(1000, 0.2)
    events = [codecs.decode_ticks_message(record.value) for record in records]
    assert sum(len(e) for e in events if isinstance(e, TickBatch)) == received
    gap = events[-1]
    assert isinstance(gap, FeedGap)
    assert gap.reason is GapReason.DISCONNECTED
    assert "no new trade came before the feed stopped" in gap.detail
    assert (publisher.stats.gaps, publisher.stats.finished) == (1, True)


async def test_any_other_feed_is_cancelled() -> None:
    async def endless(queue: asyncio.Queue[FeedEvent]) -> AsyncIterator[FeedEvent]:
        while True:
            yield await queue.get()

    async with MemoryBus() as bus:
        publisher = FeedPublisher(bus)
        source = endless(asyncio.Queue())
        feeding = asyncio.create_task(publisher.run(source))
        await asyncio.sleep(0)
        await asyncio.wait_for(sources.stop_feeding(feeding, source), WAIT)
    assert feeding.cancelled()
    assert not publisher.stats.finished

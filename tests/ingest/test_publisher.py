"""The feed publisher: tick batches and feed gaps on ``md.ticks`` in the feed's order, keyed by
instrument; rejects on ``md.ticks.rejected`` before the event that followed them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from pathlib import Path

from core import codecs
from core.gaps import FeedGap, GapReason
from core.ticks import Side, Tick, TickBatch
from core.topics import TICKS, TICKS_REJECTED
from ingest.files import BadRow, ReadReport
from ingest.files.reader import read_ticks
from ingest.pacing import paced
from ingest.publisher import FeedEvent, FeedPublisher
from ingest.sources import venue_reject
from ingest.venues.base import BadFrame
from ingest.venues.events import VenueReject
from streams.bus import Record
from streams.memory import MemoryBus

BTC = "KRAKEN:BTC/USD"
T0 = 1_762_795_433_000_000_000


def batch(first_id: int, count: int) -> TickBatch:
    return TickBatch.from_ticks(
        [
            Tick(BTC, first_id + i, Decimal("100.5"), Decimal("0.25"), Side.BUY, T0 + i, T0 + i)
            for i in range(count)
        ]
    )


async def events(items: Iterable[FeedEvent], before: dict[int, object]) -> AsyncIterator[FeedEvent]:
    """The feed; ``before[i]`` is a callable run just before item ``i`` is handed out."""
    for index, item in enumerate(items):
        hook = before.get(index)
        if callable(hook):
            hook()
        yield item


async def read_all(bus: MemoryBus, topic: str) -> list[Record]:
    async with bus.subscribe("reader", [topic]) as reader:
        return await reader.poll(1000, 0.2)


async def test_batches_and_gaps_go_to_md_ticks_in_order_keyed_by_instrument() -> None:
    gap = FeedGap(
        instrument=BTC, start_ns=T0 + 2, end_ns=T0 + 10, reason=GapReason.SEQUENCE, detail="x"
    )
    feed: list[FeedEvent] = [batch(1, 3), gap, batch(9, 2)]
    bus = MemoryBus(partitions=1)
    publisher = FeedPublisher(bus)
    await asyncio.wait_for(publisher.run(events(feed, {})), 5)
    records = await read_all(bus, TICKS)
    await bus.close()

    assert [record.key for record in records] == [codecs.instrument_key(BTC)] * 3
    decoded = [codecs.decode_ticks_message(record.value) for record in records]
    assert decoded[1] == gap
    sent = [(item.ticks() if isinstance(item, TickBatch) else item) for item in feed]
    got = [(item.ticks() if isinstance(item, TickBatch) else item) for item in decoded]
    assert got == sent
    stats = publisher.stats
    assert (stats.batches, stats.ticks, stats.gaps, stats.bad_rows) == (2, 5, 1, 0)
    assert stats.finished


async def test_rejects_heard_during_the_feed_are_published_with_their_reason_and_payload() -> None:
    bus = MemoryBus(partitions=1)
    publisher = FeedPublisher(bus)
    frame = '{"channel":"trade","data":[{"price":"x"}]}'
    refused = VenueReject(
        "kraken", BadFrame.of("bad_field", "data[0].price: not a number", frame), T0
    )
    hooks: dict[int, object] = {
        1: lambda: publisher.reject(venue_reject(refused, "ws://127.0.0.1:1/v2")),
        2: lambda: publisher.bad_row(BadRow(7, "price 'x' is not a decimal number", "t.csv")),
    }
    await asyncio.wait_for(publisher.run(events([batch(1, 1), batch(2, 1), batch(3, 1)], hooks)), 5)
    rejected = [codecs.decode_rejected(r.value) for r in await read_all(bus, TICKS_REJECTED)]
    await bus.close()

    assert [message.reason for message in rejected] == ["bad_venue_message", "bad_row"]
    venue, row = rejected
    assert venue.detail == "bad_field: data[0].price: not a number"
    assert venue.payload == frame.encode()
    assert (venue.source, venue.origin) == ("ingest.kraken", "ws://127.0.0.1:1/v2")
    assert (row.detail, row.origin) == ("price 'x' is not a decimal number", "t.csv:7")
    assert publisher.stats.bad_rows == 2


HUGE = 3_000_000


async def test_a_bad_field_of_megabytes_is_rejected_cut_and_the_replay_goes_on(
    tmp_path: Path,
) -> None:
    """Its reason quotes the field: cut, the reject fits a bus record (1 MiB here)."""
    path = tmp_path / "BTCUSDT-aggTrades-2026-01-01.csv"
    path.write_text(
        "1,87648.21,0.08185,1,1,1767225600039409,True,True\n"
        f"2,{'9' * HUGE}x,0.1,2,2,1767225600039410,True,True\n"
        "3,87648.22,0.00013,3,3,1767225600272386,False,True\n"
    )
    bus = MemoryBus(partitions=1)
    publisher = FeedPublisher(bus)
    report = ReadReport(on_bad=publisher.bad_row)
    await asyncio.wait_for(publisher.run(paced(read_ticks(path, report=report), None)), 30)
    (record,) = await read_all(bus, TICKS_REJECTED)
    await bus.close()

    assert (publisher.stats.ticks, publisher.stats.bad_rows, publisher.stats.finished) == (
        2,
        1,
        True,
    )
    rejected = codecs.decode_rejected(record.value)
    assert len(rejected.detail) == codecs.MAX_REJECTED_DETAIL
    assert rejected.detail.startswith("price '999")
    assert rejected.detail.endswith(f"... [cut from {HUGE + 33:,} characters]")
    assert len(report.bad_rows[0].reason) == codecs.MAX_REJECTED_DETAIL


async def test_a_venue_frame_of_megabytes_is_rejected_cut() -> None:
    frame = '{"data":[{"price":"' + "9" * HUGE + 'x"}]}'
    bad = BadFrame("bad_field", f"data[0].price: {'9' * HUGE}x is not a number", frame)
    bus = MemoryBus(partitions=1)
    publisher = FeedPublisher(bus)
    hooks: dict[int, object] = {
        0: lambda: publisher.reject(venue_reject(VenueReject("kraken", bad, T0), "ws://x"))
    }
    await asyncio.wait_for(publisher.run(events([batch(1, 1)], hooks)), 5)
    (record,) = await read_all(bus, TICKS_REJECTED)
    await bus.close()

    rejected = codecs.decode_rejected(record.value)
    assert rejected.payload == frame.encode()[: codecs.MAX_REJECTED_PAYLOAD]
    assert len(rejected.detail) == codecs.MAX_REJECTED_DETAIL
    assert rejected.detail.startswith("bad_field: data[0].price: 999")
    whole = len(f"bad_field: {bad.detail}")
    assert rejected.detail.endswith(
        f"... [cut from {whole:,} characters] (payload cut from {len(frame)} to 65536 bytes)"
    )

"""The storage writer stores the feed gaps of ``md.ticks`` with the rest, once each."""

from __future__ import annotations

import msgspec
import pytest

from core import codecs
from core.topics import CANDLES, TICKS
from storage import MarketDataStore, PostgresStore, WriteReport
from storage.writer import StorageWriter, decode_records
from streams.bus import Record
from streams.memory import MemoryBus
from tests.storage.factories import MINUTE, batch, candle, gap, tick

FOREVER = 2**62
DOWN = gap(10 * 10**9, 75 * 10**9)
FLAGGED = msgspec.structs.replace(candle(1), gap=True)


def record(topic: str, offset: int, value: bytes) -> Record:
    return Record(topic, 0, offset, b"TEST:BTCUSD", value, 0)


def test_feed_gaps_of_md_ticks_are_decoded_apart_from_the_tick_batches() -> None:
    ticks = batch(tick(1, 0))
    decoded = decode_records(
        [
            record(TICKS, 0, codecs.encode_tick_batch(ticks)),
            record(TICKS, 1, codecs.encode_feed_gap(DOWN)),
            record(CANDLES, 0, codecs.encode_candle(FLAGGED)),
        ]
    )
    assert decoded.gaps == [DOWN]
    assert [b.ticks() for b in decoded.ticks] == [ticks.ticks()]
    assert decoded.candles == [FLAGGED]
    assert decoded.undecodable == 0


async def publish_all(bus: MemoryBus) -> None:
    """A tick, the feed gap twice (the bus delivers at least once), a flagged candle."""
    ticks, candles = bus.topic(TICKS), bus.topic(CANDLES)
    key = codecs.instrument_key("TEST:BTCUSD")
    await ticks.publish(key, codecs.encode_tick_batch(batch(tick(1, 0))))
    for _ in range(2):
        await ticks.publish(key, codecs.encode_feed_gap(DOWN))
    await candles.publish(codecs.candle_key(FLAGGED), codecs.encode_candle(FLAGGED))


async def drained(writer: StorageWriter) -> StorageWriter:
    writer.drain()
    await writer.run()
    return writer


class DiesAfterStoring:
    """A store whose writer 'dies' after its first write is stored, before the bus commit."""

    def __init__(self, store: MarketDataStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def write(self, *args: object, **kwargs: object) -> WriteReport:
        await self.store.write(*args, **kwargs)  # type: ignore[arg-type]
        raise ConnectionAbortedError("the writer died after storing, before committing")


async def test_the_writer_stores_gaps_and_flags_once_through_replays_and_restarts(
    migrated_database: str,
) -> None:
    async with MemoryBus(partitions=1) as bus, PostgresStore.open(migrated_database) as store:
        await publish_all(bus)
        dying = StorageWriter(bus, DiesAfterStoring(store))  # type: ignore[arg-type]
        with pytest.raises(ConnectionAbortedError):
            await drained(dying)
        restarted = await drained(StorageWriter(bus, store))
        assert restarted.stats.skipped == 4  # the store held them: offsets in one transaction
        assert restarted.stats.gaps == 0
        # another group reads everything again: the keys keep it to one row each
        other = await drained(StorageWriter(bus, store, group="another-writer"))
        assert (other.stats.writes, other.stats.gaps, other.stats.skipped) == (1, 0, 0)
        assert await store.gaps("TEST:BTCUSD", 0, FOREVER) == [DOWN]
        assert await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER) == [FLAGGED]


async def test_the_writer_counts_the_gaps_it_stored(migrated_database: str) -> None:
    async with MemoryBus(partitions=1) as bus, PostgresStore.open(migrated_database) as store:
        await publish_all(bus)
        writer = await drained(StorageWriter(bus, store))
    assert (writer.stats.ticks, writer.stats.gaps, writer.stats.candles) == (1, 1, 1)

"""The writer through a database outage, on the in-process bus and store: it holds what it
read in a bounded buffer, retries, and past the buffer the feed waits (backpressure); once
the database is back, everything is stored once. Nothing is lost, nothing doubled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from core import codecs
from core.topics import TICKS
from storage import MemoryStore, WriteReport
from storage.backlog import WriteBacklog
from storage.unavailable import DatabaseUnavailableError
from storage.writer import StorageWriter
from streams.bus import Record
from streams.memory import MemoryBus
from streams.outage import Backoff
from tests.storage.factories import batch, tick

FOREVER = 2**62
KEY = codecs.instrument_key("TEST:BTCUSD")


def record(offset: int, size: int = 10, partition: int = 0) -> Record:
    return Record(TICKS, partition, offset, b"k", b"v" * (size - 1), 0)


class Switchable(MemoryStore):
    """A store whose database can be taken away: writes then raise as PostgresStore's do."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    async def write(self, *args: object, **kwargs: object) -> WriteReport:
        if self.down:
            self.refused += 1
            raise DatabaseUnavailableError("connection refused")
        return await super().write(*args, **kwargs)  # type: ignore[arg-type]


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_backlog_is_full_at_its_size_and_gives_back_the_oldest_first() -> None:
    backlog = WriteBacklog(max_bytes=30)
    backlog.add([record(0), record(1)], [record(0), record(1)])
    assert not backlog.full
    backlog.add([record(2)], [record(2)])
    assert backlog.full
    assert (len(backlog), backlog.bytes, backlog.peak_bytes) == (3, 30, 30)
    oldest = backlog.oldest(2)
    assert [r.offset for r in oldest] == [0, 1]
    assert backlog.stored(oldest) == {(TICKS, 0): 2}  # only what is stored may be committed
    assert not backlog.full
    assert (len(backlog), backlog.bytes, backlog.peak_bytes) == (1, 10, 30)


def test_what_a_store_held_already_is_committed_with_the_last_of_the_backlog() -> None:
    backlog = WriteBacklog(max_bytes=100)
    skipped, fresh = record(0, partition=1), record(5)
    backlog.add([skipped, fresh], [fresh])
    assert backlog.stored(backlog.oldest(10)) == {(TICKS, 1): 1, (TICKS, 0): 6}
    assert backlog.stored([]) == {}


def test_records_stored_out_of_order_are_refused() -> None:
    backlog = WriteBacklog(max_bytes=100)
    backlog.add([record(0), record(1)], [record(0), record(1)])
    with pytest.raises(ValueError, match="oldest held"):
        backlog.stored([record(1)])


def test_a_backlog_needs_a_positive_size() -> None:
    with pytest.raises(ValueError, match="positive size"):
        WriteBacklog(max_bytes=0)


async def test_past_the_buffer_the_feed_waits_and_nothing_is_lost() -> None:
    published = 60
    store = Switchable()
    store.down = True
    async with MemoryBus(partitions=1, capacity=10) as bus:
        one = len(codecs.encode_tick_batch(batch(tick(1, 0)))) + len(KEY)
        writer = StorageWriter(
            bus,
            store,
            max_records=4,
            poll_timeout=0.01,
            buffer_bytes=8 * one,
            backoff=Backoff(first=0.01, most=0.02),
        )
        writing = asyncio.create_task(writer.run())
        await asyncio.sleep(0)

        async def feed() -> None:
            topic = bus.topic(TICKS)
            for i in range(published):
                await topic.publish(KEY, codecs.encode_tick_batch(batch(tick(i, i * 10**6))))

        feeding = asyncio.create_task(feed())
        await wait_for(lambda: bus.waiting_publishers > 0 and writer.stats.buffer_full)
        assert bus.topic(TICKS).waiting_publishers == bus.waiting_publishers  # the feed's
        await asyncio.sleep(0.1)  # retries go on; the buffer stays bounded, the feed waits
        assert not feeding.done()
        assert writer.stats.database_error == "connection refused"
        assert store.refused > 1
        assert 8 <= writer.stats.held <= 8 + 4  # the bound, plus at most one poll
        assert not writing.done()

        store.down = False
        await asyncio.wait_for(feeding, 10)
        await wait_for(lambda: writer.stats.ticks == published and writer.stats.held == 0)
        writer.drain()
        await asyncio.wait_for(writing, 10)
    stored = await store.ticks("TEST:BTCUSD", 0, FOREVER)
    assert sorted(int(i) for i in stored.trade_id) == list(range(published))
    assert writer.stats.database_error is None
    assert writer.stats.peak_held_bytes >= 8 * one


async def test_a_writer_drained_while_the_database_is_away_stops_and_says_what_it_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Switchable()
    store.down = True
    async with MemoryBus(partitions=1) as bus:
        writer = StorageWriter(bus, store, poll_timeout=0.01, backoff=Backoff(0.01, 0.02))
        writing = asyncio.create_task(writer.run())
        await asyncio.sleep(0)
        await bus.topic(TICKS).publish(KEY, codecs.encode_tick_batch(batch(tick(1, 0))))
        await wait_for(lambda: writer.stats.database_error is not None)
        writer.drain()
        await asyncio.wait_for(writing, 10)
    assert "stopped with 1 records read but not stored" in caplog.text


async def test_partitions_that_move_during_an_outage_are_stored_once_and_the_writer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streams.bus")
    store = Switchable()
    store.down = True
    instruments = [f"TEST:SYM{i}" for i in range(8)]  # over both partitions
    async with MemoryBus(partitions=2) as bus:
        writer = StorageWriter(bus, store, poll_timeout=0.01, backoff=Backoff(0.01, 0.02))
        writing = asyncio.create_task(writer.run())
        await asyncio.sleep(0)
        for i, name in enumerate(instruments):
            tick_of = tick(i, i * 10**6, instrument=name)
            await bus.topic(TICKS).publish(
                codecs.instrument_key(name), codecs.encode_tick_batch(batch(tick_of))
            )
        await wait_for(lambda: writer.stats.held == len(instruments))
        async with bus.subscribe(writer.group, [TICKS]):  # a second writer takes a partition
            store.down = False
            await wait_for(lambda: writer.stats.held == 0)
            assert not writing.done()
        writer.drain()
        await asyncio.wait_for(writing, 10)
    stored = [await store.ticks(name, 0, FOREVER) for name in instruments]
    assert [len(b) for b in stored] == [1] * len(instruments)
    assert "no longer assigned to this member: left out of the commit" in caplog.text


class CommitsThenFails(MemoryStore):
    """A store whose first write commits, then reports the connection lost (the outcome of a
    commit the client never heard back from); it remembers what each write covered."""

    def __init__(self) -> None:
        super().__init__()
        self.covered: list[dict[tuple[str, int], int]] = []

    async def write(self, *args: object, **kwargs: object) -> WriteReport:
        self.covered.append(dict(kwargs["offsets"]))  # type: ignore[call-overload]
        report = await super().write(*args, **kwargs)  # type: ignore[arg-type]
        if len(self.covered) == 1:
            raise DatabaseUnavailableError("connection lost at commit")
        return report


async def test_a_write_of_unknown_outcome_is_retried_as_the_very_same_chunk() -> None:
    store = CommitsThenFails()
    async with MemoryBus(partitions=1) as bus:
        topic = bus.topic(TICKS)
        for i in range(3):
            await topic.publish(KEY, codecs.encode_tick_batch(batch(tick(i, i * 10**6))))
        writer = StorageWriter(
            bus, store, max_records=100, poll_timeout=0.01, backoff=Backoff(first=0.2, most=0.2)
        )
        writing = asyncio.create_task(writer.run())
        await wait_for(lambda: len(store.covered) == 1)
        for i in range(3, 6):  # more arrives while the retry waits
            await topic.publish(KEY, codecs.encode_tick_batch(batch(tick(i, i * 10**6))))
        await wait_for(lambda: len(store.covered) == 3 and writer.stats.held == 0)
        writer.drain()
        await asyncio.wait_for(writing, 10)
    assert store.covered[1] == store.covered[0]  # the retry: exactly what may have committed
    stored = await store.ticks("TEST:BTCUSD", 0, FOREVER)
    assert sorted(int(i) for i in stored.trade_id) == list(range(6))

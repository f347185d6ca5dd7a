"""The in-process bus: the bus contract, then what only the in-process adapter promises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from streams.bus import BusClosedError, MessageTooLargeError, TopicPartition, next_offsets
from streams.memory import MemoryBus
from tests.streams.contract import BusContract

WAIT = 5.0


class TestMemoryBus(BusContract):
    @pytest.fixture
    def capacity(self) -> int | None:
        return 8

    @pytest.fixture
    async def bus(self, capacity: int | None) -> AsyncIterator[MemoryBus]:
        assert capacity is not None
        bus = MemoryBus(partitions=3, capacity=capacity)
        yield bus
        await asyncio.wait_for(bus.close(), WAIT)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus(partitions=2, capacity=4)
    yield bus
    await asyncio.wait_for(bus.close(), WAIT)


async def test_a_topic_nobody_reads_keeps_the_newest_capacity_records(bus: MemoryBus) -> None:
    topic = bus.topic("t")
    for i in range(10):
        await asyncio.wait_for(topic.publish(b"a", b"%d" % i), WAIT)
    async with topic.subscribe("g") as sub:
        got = await asyncio.wait_for(sub.poll(timeout=0), WAIT)
    assert [(r.offset, r.value) for r in got] == [(o, b"%d" % o) for o in range(6, 10)]


async def test_a_group_without_members_holds_publishers_back_no_more(bus: MemoryBus) -> None:
    topic = bus.topic("t")
    sub = topic.subscribe("g")
    for i in range(4):
        await asyncio.wait_for(topic.publish(b"a", b"%d" % i), WAIT)
    blocked = asyncio.ensure_future(topic.publish(b"a", b"4"))
    done, _ = await asyncio.wait([blocked], timeout=0.05)
    assert not done
    await sub.close()
    assert (await asyncio.wait_for(blocked, WAIT)).offset == 4


async def test_a_returning_group_resumes_from_the_oldest_kept_record_and_says_so(
    bus: MemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    topic = bus.topic("t")
    async with topic.subscribe("g") as sub:
        await sub.commit({TopicPartition("t", topic.partition_for(b"a")): 0})
    for i in range(10):
        await asyncio.wait_for(topic.publish(b"a", b"%d" % i), WAIT)
    with caplog.at_level(logging.WARNING):
        async with topic.subscribe("g") as sub:
            got = await asyncio.wait_for(sub.poll(timeout=0), WAIT)
    assert [r.offset for r in got] == [6, 7, 8, 9]
    assert "offsets 0..5 were dropped" in caplog.text


async def test_a_partition_that_moves_is_read_from_where_the_group_started_with_latest(
    bus: MemoryBus,
) -> None:
    topic = bus.topic("t")
    await topic.publish(b"a", b"old")
    first = topic.subscribe("g", start="latest")
    await topic.publish(b"a", b"new")
    second = topic.subscribe("g", start="latest")  # takes one partition over
    await first.close()
    got = await asyncio.wait_for(second.poll(timeout=0), WAIT)
    assert [r.value for r in got] == [b"new"]
    await second.close()


async def test_a_third_member_gets_a_share_and_nobody_owns_a_partition_twice() -> None:
    bus = MemoryBus(partitions=6)
    members = [bus.subscribe("g", ["t"]) for _ in range(3)]
    owned = [m.assignment() for m in members]
    assert [len(o) for o in owned] == [2, 2, 2]
    assert set().union(*owned) == {TopicPartition("t", p) for p in range(6)}
    await bus.close()
    assert all(m.closed for m in members)


async def test_members_may_read_different_topics_of_one_group(bus: MemoryBus) -> None:
    ticks = bus.subscribe("g", ["ticks"])
    both = bus.subscribe("g", ["ticks", "candles"])
    assert {tp.topic for tp in both.assignment()} >= {"candles"}
    assert {tp.topic for tp in ticks.assignment()} == {"ticks"}
    assert len(ticks.assignment() | both.assignment()) == 4


async def test_publish_refuses_an_oversized_record() -> None:
    bus = MemoryBus(max_message_bytes=10)
    with pytest.raises(MessageTooLargeError, match="max_message_bytes=10"):
        await bus.topic("t").publish(b"key", b"12345678")
    await bus.close()


async def test_closing_the_bus_wakes_waiting_publishers_and_pollers(bus: MemoryBus) -> None:
    topic = bus.topic("t")
    sub = topic.subscribe("g")
    for i in range(4):
        await topic.publish(b"a", b"%d" % i)
    got = await sub.poll(timeout=0)
    await sub.commit(next_offsets(got))
    other = bus.subscribe("h", ["u"])
    polling = asyncio.ensure_future(other.poll(timeout=WAIT))
    for i in range(4):
        await topic.publish(b"a", b"%d" % i)
    publishing = asyncio.ensure_future(topic.publish(b"a", b"over"))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(bus.close(), WAIT)
    assert await asyncio.wait_for(polling, WAIT) == []
    with pytest.raises(BusClosedError):
        await asyncio.wait_for(publishing, WAIT)
    with pytest.raises(BusClosedError):
        bus.subscribe("g", ["t"])


def test_arguments_are_checked() -> None:
    bus = MemoryBus()
    with pytest.raises(TypeError, match="not one string"):
        bus.subscribe("g", "md.ticks")
    with pytest.raises(ValueError, match="start"):
        bus.subscribe("g", ["t"], start="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bad topic name"):
        bus.topic("no spaces")
    with pytest.raises(ValueError, match="positive"):
        MemoryBus(capacity=0)


async def test_commit_refuses_offsets_past_the_end(bus: MemoryBus) -> None:
    topic = bus.topic("t")
    async with topic.subscribe("g") as sub:
        with pytest.raises(ValueError, match=r"not in 0\.\.0"):
            await sub.commit({("t", 0): 1})


async def test_every_in_process_bus_is_a_cluster_of_its_own() -> None:
    async with MemoryBus() as first, MemoryBus() as second:
        assert first.cluster_id != second.cluster_id

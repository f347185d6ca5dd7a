"""The bus contract: what every adapter (in-process, Kafka) must do, as one test suite.

An adapter's test module subclasses :class:`BusContract` and provides the ``bus`` fixture (an
async generator yielding a bus whose topics are created on first use with at least two
partitions) and, when the adapter bounds its buffers, ``capacity`` (the records a partition
may hold beyond a group's committed offset before ``publish`` waits). An adapter without such a
bound (Kafka: retention is by time and size, producers never wait for consumers) keeps the
default ``None``, which skips the backpressure tests.

Every test uses fresh topic and group names, so a broker shared across tests is fine. Group
rebalances take time on Kafka: members are first *settled* (polled until the group's
partitions are split between them) and only then are records published; ``settle_timeout``
bounds that. Every await has a timeout, so a broken adapter fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import ClassVar, TypeVar

import pytest

from streams.bus import (
    Bus,
    BusClosedError,
    Record,
    Subscription,
    Topic,
    TopicPartition,
    next_offsets,
)

T = TypeVar("T")


class BusContract:
    """The contract suite; subclass it as ``Test<Adapter>`` and provide ``bus``."""

    settle_timeout: ClassVar[float] = 5.0
    """Seconds a group may take to split its partitions between its members."""
    wait: ClassVar[float] = 5.0
    """Seconds any single await may take before the test fails."""

    @pytest.fixture
    def capacity(self) -> int | None:
        """The adapter's per-partition bound, or ``None`` when it has none."""
        return None

    @pytest.fixture
    def bus(self, capacity: int | None) -> AsyncIterator[Bus]:
        """The adapter under test (an async generator fixture that closes it at the end)."""
        raise NotImplementedError("an adapter's test class provides the bus fixture")

    @pytest.fixture
    def name(self) -> str:
        """A fresh prefix for this test's topics and groups."""
        return f"contract.{uuid.uuid4().hex[:12]}"

    # -- helpers ----------------------------------------------------------------------------

    async def within(self, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, self.wait)

    async def publish(self, topic: Topic, items: Sequence[tuple[bytes, bytes]]) -> list[Record]:
        return await self.within(topic.publish_many(items))

    async def drain(self, sub: Subscription, count: int, extra: float = 0.0) -> list[Record]:
        """Poll until ``count`` records came; fails after ``wait + extra`` seconds."""
        records: list[Record] = []

        async def collect() -> None:
            while len(records) < count:
                records.extend(await sub.poll(max_records=count - len(records), timeout=0.5))

        await asyncio.wait_for(collect(), self.wait + extra)
        assert len(records) == count
        return records

    async def nothing_more(self, sub: Subscription) -> None:
        assert await self.within(sub.poll(timeout=0.05)) == []

    async def settle(self, subs: Sequence[Subscription], partitions: set[TopicPartition]) -> None:
        """Poll ``subs`` until their assignments are disjoint and cover ``partitions``."""

        async def until_split() -> None:
            while True:
                for sub in subs:
                    assert await sub.poll(timeout=0.01) == [], "settle expects an empty topic"
                owned = [sub.assignment() for sub in subs]
                split = all(owned) and sum(map(len, owned)) == len(partitions)
                if split and set().union(*owned) == partitions:
                    return

        await asyncio.wait_for(until_split(), self.settle_timeout)

    @staticmethod
    def keys_for_every_partition(topic: Topic, per_partition: int = 1) -> list[bytes]:
        """Distinct keys, ``per_partition`` of them landing on each partition."""
        found: dict[int, list[bytes]] = defaultdict(list)
        i = 0
        while any(len(found[p]) < per_partition for p in range(topic.partitions)):
            key = f"key-{i}".encode()
            found[topic.partition_for(key)].append(key)
            i += 1
        return [key for p in range(topic.partitions) for key in found[p][:per_partition]]

    @staticmethod
    def all_partitions(topic: Topic) -> set[TopicPartition]:
        return {TopicPartition(topic.name, p) for p in range(topic.partitions)}

    # -- publishing and reading -------------------------------------------------------------

    async def test_a_bus_names_its_cluster(self, bus: Bus) -> None:
        assert isinstance(bus.cluster_id, str)
        assert bus.cluster_id

    async def test_topics_have_several_partitions_for_this_suite(self, bus: Bus, name: str) -> None:
        assert bus.topic(f"{name}.t").partitions >= 2

    async def test_publish_then_poll_returns_records_in_order_per_partition(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        keys = self.keys_for_every_partition(topic)
        items = [(keys[i % len(keys)], f"v{i}".encode()) for i in range(5 * len(keys))]
        published = await self.publish(topic, items)
        async with bus.subscribe(f"{name}.g", [topic.name]) as sub:
            records = await self.drain(sub, len(items))
            await self.nothing_more(sub)
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        for partition, got in by_partition.items():
            assert [r.offset for r in got] == list(range(len(got))), "offsets count from 0"
            sent = [r for r in published if r.partition == partition]
            assert [(r.key, r.value) for r in got] == [(r.key, r.value) for r in sent]
            assert all(r.topic == topic.name and r.timestamp_ns > 0 for r in got)
        assert len(by_partition) == topic.partitions

    async def test_same_key_always_lands_on_the_same_partition(self, bus: Bus, name: str) -> None:
        topic = bus.topic(f"{name}.t")
        items = [(f"k{i % 7}".encode(), b"x") for i in range(70)]
        published = await self.publish(topic, items)
        partition_of: dict[bytes, set[int]] = defaultdict(set)
        for record in published:
            partition_of[record.key].add(record.partition)
            assert record.partition == topic.partition_for(record.key)
        assert all(len(partitions) == 1 for partitions in partition_of.values())

    async def test_publish_returns_the_offset_the_record_is_read_at(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        published = await self.publish(topic, [(b"a", b"1"), (b"a", b"2"), (b"a", b"3")])
        assert [r.offset for r in published] == [0, 1, 2]
        async with topic.subscribe(f"{name}.g") as sub:
            got = await self.drain(sub, 3)
        assert [(r.partition, r.offset, r.value) for r in got] == [
            (r.partition, r.offset, r.value) for r in published
        ]

    async def test_headers_are_read_back_as_published_and_absent_ones_are_empty(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        headers = (("traceparent", b"00-" + b"ab" * 16 + b"-" + b"cd" * 8 + b"-01"), ("x", b""))
        published = await self.within(
            topic.publish_many([(b"a", b"1"), (b"a", b"2")], headers=headers)
        )
        published.append(await self.within(topic.publish(b"a", b"3")))
        assert [r.headers for r in published] == [headers, headers, ()]
        async with topic.subscribe(f"{name}.g") as sub:
            got = await self.drain(sub, 3)
        assert [(r.value, r.headers) for r in got] == [(b"1", headers), (b"2", headers), (b"3", ())]

    async def test_a_header_that_is_not_a_str_bytes_pair_is_refused(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        with pytest.raises(TypeError, match="a header is a \\(str, bytes\\) pair"):
            await self.within(topic.publish(b"a", b"1", headers=(("traceparent", "text"),)))  # type: ignore[arg-type]

    async def test_poll_returns_at_most_max_records(self, bus: Bus, name: str) -> None:
        topic = bus.topic(f"{name}.t")
        await self.publish(topic, [(b"a", b"%d" % i) for i in range(10)])
        async with topic.subscribe(f"{name}.g") as sub:
            await self.drain(sub, 1)  # the first poll on Kafka may come before the fetch
            got = await self.within(sub.poll(max_records=4, timeout=1))
            assert 1 <= len(got) <= 4

    async def test_poll_waits_at_most_the_timeout_when_nothing_arrives(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        async with topic.subscribe(f"{name}.g") as sub:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await self.within(sub.poll(timeout=0.1)) == []
            assert loop.time() - started < 0.1 + 2.0

    async def test_a_waiting_poll_returns_when_a_record_arrives(self, bus: Bus, name: str) -> None:
        topic = bus.topic(f"{name}.t")
        async with topic.subscribe(f"{name}.g") as sub:
            await self.settle([sub], self.all_partitions(topic))
            waiting = asyncio.ensure_future(sub.poll(timeout=60))
            await asyncio.sleep(0.01)
            await self.publish(topic, [(b"a", b"hello")])
            got = await self.within(waiting)  # long before the poll's own timeout
        assert [r.value for r in got] == [b"hello"]

    async def test_subscription_over_several_topics_reads_them_all(
        self, bus: Bus, name: str
    ) -> None:
        ticks, candles = bus.topic(f"{name}.ticks"), bus.topic(f"{name}.candles")
        await self.publish(ticks, [(b"a", b"t1"), (b"b", b"t2")])
        await self.publish(candles, [(b"a", b"c1")])
        async with bus.subscribe(f"{name}.g", [ticks.name, candles.name]) as sub:
            got = await self.drain(sub, 3)
            assert sub.assignment() == self.all_partitions(ticks) | self.all_partitions(candles)
        assert sorted((r.topic, r.value) for r in got) == [
            (candles.name, b"c1"),
            (ticks.name, b"t1"),
            (ticks.name, b"t2"),
        ]

    # -- groups and offsets -----------------------------------------------------------------

    async def test_a_new_member_resumes_after_the_committed_offset(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        published = await self.publish(topic, [(b"a", b"%d" % i) for i in range(6)])
        async with topic.subscribe(f"{name}.g") as first:
            got = await self.drain(first, 6)
            await self.within(first.commit(next_offsets(got[:4])))
            assert await self.within(first.committed()) == {published[0].topic_partition: 4}
        async with topic.subscribe(f"{name}.g") as second:
            rest = await self.drain(second, 2)
            await self.nothing_more(second)
        assert [r.value for r in rest] == [b"4", b"5"]

    async def test_uncommitted_records_are_delivered_again_after_close(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        keys = self.keys_for_every_partition(topic)
        await self.publish(topic, [(key, b"x") for key in keys])
        async with topic.subscribe(f"{name}.g") as first:
            seen = await self.drain(first, len(keys))
        async with topic.subscribe(f"{name}.g") as second:
            again = await self.drain(second, len(keys))
            await self.within(second.commit(next_offsets(again)))
        assert sorted((r.partition, r.offset) for r in again) == sorted(
            (r.partition, r.offset) for r in seen
        )
        async with topic.subscribe(f"{name}.g") as third:
            await self.nothing_more(third)

    async def test_two_groups_each_get_every_record(self, bus: Bus, name: str) -> None:
        topic = bus.topic(f"{name}.t")
        keys = self.keys_for_every_partition(topic, 2)
        await self.publish(topic, [(key, key) for key in keys])
        async with topic.subscribe(f"{name}.a") as a, topic.subscribe(f"{name}.b") as b:
            got_a = await self.drain(a, len(keys))
            await self.within(a.commit(next_offsets(got_a)))
            got_b = await self.drain(b, len(keys))
        assert sorted(r.value for r in got_a) == sorted(r.value for r in got_b) == sorted(keys)

    async def test_members_of_one_group_split_the_partitions_and_get_each_record_once(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        async with topic.subscribe(f"{name}.g") as a, topic.subscribe(f"{name}.g") as b:
            await self.settle([a, b], self.all_partitions(topic))
            keys = self.keys_for_every_partition(topic, 3)
            published = await self.publish(topic, [(key, key) for key in keys])
            count_a = sum(r.topic_partition in a.assignment() for r in published)
            got_a = await self.drain(a, count_a)
            got_b = await self.drain(b, len(keys) - count_a)
            await self.within(a.commit(next_offsets(got_a)))
            await self.within(b.commit(next_offsets(got_b)))
            await self.nothing_more(a)
            await self.nothing_more(b)
            assert {r.topic_partition for r in got_a} <= a.assignment()
            assert {r.topic_partition for r in got_b} <= b.assignment()
        assert sorted(r.value for r in got_a + got_b) == sorted(keys)

    async def test_when_a_member_closes_the_other_takes_over_from_the_committed_offset(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        a = topic.subscribe(f"{name}.g")
        async with topic.subscribe(f"{name}.g") as b:
            await self.settle([a, b], self.all_partitions(topic))
            keys = self.keys_for_every_partition(topic, 3)
            published = await self.publish(topic, [(key, key) for key in keys])
            owned_by_a = a.assignment()
            of_a = [r for r in published if r.topic_partition in owned_by_a]
            got_a = await self.drain(a, len(of_a))
            handled = [r for r in got_a if r.offset == 0]  # a handles one record per partition
            await self.within(a.commit(next_offsets(handled)))
            got_b = await self.drain(b, len(published) - len(of_a))
            await self.within(b.commit(next_offsets(got_b)))
            await self.within(a.close())
            taken_over = await self.drain(b, len(of_a) - len(handled), self.settle_timeout)
            await self.nothing_more(b)
            assert b.assignment() == self.all_partitions(topic)
        assert sorted((r.partition, r.offset) for r in taken_over) == sorted(
            (r.partition, r.offset) for r in of_a if r.offset > 0
        )

    async def test_commit_leaves_out_partitions_assigned_to_another_member(
        self, bus: Bus, name: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        topic = bus.topic(f"{name}.t")
        async with topic.subscribe(f"{name}.g") as a, topic.subscribe(f"{name}.g") as b:
            await self.settle([a, b], self.all_partitions(topic))
            keys = self.keys_for_every_partition(topic)
            await self.publish(topic, [(key, key) for key in keys])
            own = min(a.assignment())
            foreign = min(b.assignment())
            with caplog.at_level(logging.INFO, logger="streams.bus"):
                await self.within(a.commit({own: 1, foreign: 1}))
            committed = await self.within(a.committed())
        assert committed.get(own) == 1
        assert foreign not in committed
        told = f"group {name}.g: {foreign.topic}[{foreign.partition}] no longer assigned"
        assert [m for m in caplog.messages if m.startswith(told)], caplog.messages

    async def test_latest_start_skips_the_records_published_before(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        keys = self.keys_for_every_partition(topic)
        await self.publish(topic, [(key, b"old") for key in keys])
        async with topic.subscribe(f"{name}.g", start="latest") as sub:
            await self.settle([sub], self.all_partitions(topic))
            await self.publish(topic, [(key, b"new") for key in keys])
            got = await self.drain(sub, len(keys))
            await self.nothing_more(sub)
        assert {r.value for r in got} == {b"new"}

    async def test_closed_subscription_and_bus_refuse_further_use(
        self, bus: Bus, name: str
    ) -> None:
        topic = bus.topic(f"{name}.t")
        sub = topic.subscribe(f"{name}.g")
        await self.within(sub.close())
        await self.within(sub.close())  # harmless twice
        with pytest.raises(BusClosedError):
            await self.within(sub.poll(timeout=0))
        await self.within(bus.close())
        with pytest.raises(BusClosedError):
            await self.within(topic.publish(b"a", b"b"))

    # -- backpressure (adapters with a bounded buffer) ----------------------------------------

    async def test_publish_waits_while_a_group_lags_by_the_capacity_and_resumes_on_commit(
        self, bus: Bus, name: str, capacity: int | None
    ) -> None:
        if capacity is None:
            pytest.skip("this adapter has no bounded buffer")
        topic = bus.topic(f"{name}.t")
        async with topic.subscribe(f"{name}.slow") as slow:
            await self.settle([slow], self.all_partitions(topic))
            await self.publish(topic, [(b"a", b"%d" % i) for i in range(capacity)])
            blocked = asyncio.ensure_future(topic.publish(b"a", b"over"))
            done, _ = await asyncio.wait([blocked], timeout=0.1)
            assert not done, "publish must wait while the group lags by the capacity"
            got = await self.drain(slow, capacity)
            assert not blocked.done(), "reading is not enough: the group must commit"
            await self.within(slow.commit(next_offsets(got[:1])))
            record = await self.within(blocked)
        assert record.offset == capacity

    async def test_a_lagging_group_does_not_stop_another_group_reading(
        self, bus: Bus, name: str, capacity: int | None
    ) -> None:
        if capacity is None:
            pytest.skip("this adapter has no bounded buffer")
        topic = bus.topic(f"{name}.t")
        async with topic.subscribe(f"{name}.slow") as slow, topic.subscribe(f"{name}.fast") as fast:
            await self.settle([slow], self.all_partitions(topic))
            await self.settle([fast], self.all_partitions(topic))
            await self.publish(topic, [(b"a", b"%d" % i) for i in range(capacity)])
            blocked = asyncio.ensure_future(topic.publish(b"a", b"over"))
            got = await self.drain(fast, capacity)
            await self.within(fast.commit(next_offsets(got)))
            assert [r.offset for r in got] == list(range(capacity))
            assert not blocked.done()
            await self.within(slow.commit(next_offsets((await self.drain(slow, capacity))[:1])))
            await self.within(blocked)

"""The in-process bus: topics, groups and subscriptions over :class:`PartitionLog`s."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Collection, Mapping

from streams.bus import (
    Bus,
    BusClosedError,
    Headers,
    MessageTooLargeError,
    Offsets,
    PartitionProgress,
    Record,
    Start,
    Subscription,
    Topic,
    TopicPartition,
    check_headers,
    check_subscription,
    tell_left_out,
)
from streams.memory.group import Group
from streams.memory.log import PartitionLog, Signal
from streams.partitioning import partition_for

log = logging.getLogger(__name__)

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_YIELD_EVERY = 64
"""A publisher that never has to wait still yields to the event loop this often."""


class MemoryBus(Bus):
    """Every topic and group in this process's memory; nothing survives the process.

    - ``partitions``: partitions of a topic created on first use, unless ``topic_partitions``
      names it.
    - ``capacity``: records a partition retains beyond the lowest offset an active group (one
      with members) still needs; ``publish`` waits while it is reached. A partition that no
      active group reads keeps the newest ``capacity`` records.
    - ``max_message_bytes``: the largest key + value accepted (Kafka's default is about 1 MiB).
    """

    def __init__(
        self,
        *,
        partitions: int = 4,
        topic_partitions: Mapping[str, int] | None = None,
        capacity: int = 10_000,
        max_message_bytes: int = 1024 * 1024,
    ) -> None:
        if partitions < 1 or capacity < 1 or max_message_bytes < 1:
            raise ValueError("partitions, capacity and max_message_bytes must be positive")
        self.default_partitions = partitions
        self.topic_partitions = dict(topic_partitions or {})
        self.capacity = capacity
        self.max_message_bytes = max_message_bytes
        self.closed = False
        self.cluster_id = f"memory-{uuid.uuid4().hex}"
        self.waiting_publishers = 0
        """Publishers waiting for room now (a group is behind: backpressure)."""
        self._topics: dict[str, MemoryTopic] = {}
        self._groups: dict[str, Group] = {}
        self._subscriptions: set[MemorySubscription] = set()
        self._interest: dict[str, list[Group]] = {}  # active groups reading each topic

    def topic(self, name: str) -> MemoryTopic:
        topic = self._topics.get(name)
        if topic is None:
            if _TOPIC_NAME.fullmatch(name) is None:
                raise ValueError(f"bad topic name {name!r}: use 1-249 of A-Z a-z 0-9 . _ -")
            partitions = self.topic_partitions.get(name, self.default_partitions)
            topic = self._topics[name] = MemoryTopic(self, name, partitions)
        return topic

    def subscribe(
        self, group: str, topics: Collection[str], *, start: Start = "earliest"
    ) -> MemorySubscription:
        check_subscription(group, topics, start)
        self._check_open()
        members = [self.topic(name) for name in dict.fromkeys(topics)]
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = Group(group, self._log_of)
        subscription = MemorySubscription(self, state, tuple(t.name for t in members))
        self._subscriptions.add(subscription)
        partitions = [tp for topic in members for tp in topic.topic_partitions]
        state.join(subscription, partitions, start)
        self._groups_changed(subscription.topics)
        return subscription

    async def close(self) -> None:
        if self.closed:
            return
        for subscription in list(self._subscriptions):
            await subscription.close()
        self.closed = True
        for topic in self._topics.values():
            for partition in topic.logs:
                partition.space.fire()

    def _check_open(self) -> None:
        if self.closed:
            raise BusClosedError("the bus is closed")

    def _log_of(self, tp: TopicPartition) -> PartitionLog:
        return self._topics[tp.topic].logs[tp.partition]

    def _active_groups(self, topic: str) -> list[Group]:
        return self._interest.get(topic, [])

    def _groups_changed(self, topics: Collection[str]) -> None:
        """Refresh who reads what; wake publishers of ``topics`` (the hold may have moved)."""
        self._interest = {}
        for group in self._groups.values():
            for name in group.topics:
                self._interest.setdefault(name, []).append(group)
        for name in topics:
            for partition in self._topics[name].logs:
                partition.space.fire()

    def _forget(self, subscription: MemorySubscription) -> None:
        self._subscriptions.discard(subscription)
        self._groups_changed(subscription.topics)


class MemoryTopic(Topic):
    """A topic of a :class:`MemoryBus` (get it with :meth:`MemoryBus.topic`)."""

    def __init__(self, bus: MemoryBus, name: str, partitions: int) -> None:
        if partitions < 1:
            raise ValueError(f"topic {name} needs at least one partition")
        self.bus = bus
        self.name = name
        self.partitions = partitions
        self.logs = [PartitionLog(bus.capacity) for _ in range(partitions)]
        self.topic_partitions = [TopicPartition(name, p) for p in range(partitions)]
        self.waiting_publishers = 0
        """Publishers to this topic waiting for room now (backpressure)."""
        self._unyielded = 0

    def _hold(self, tp: TopicPartition) -> int | None:
        floors = [group.floor(tp) for group in self.bus._active_groups(self.name)]
        return min(floors) if floors else None

    async def publish(self, key: bytes, value: bytes, *, headers: Headers = ()) -> Record:
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            raise TypeError("key and value must be bytes")
        if headers:
            check_headers(headers)
        if len(key) + len(value) > self.bus.max_message_bytes:
            raise MessageTooLargeError(
                f"record of {len(key) + len(value)} bytes on {self.name} exceeds"
                f" max_message_bytes={self.bus.max_message_bytes}"
            )
        self.bus._check_open()
        tp = self.topic_partitions[partition_for(key, self.partitions)]
        partition = self.logs[tp.partition]
        hold = self._hold(tp)
        while hold is not None and partition.end - hold >= partition.capacity:
            self.bus.waiting_publishers += 1
            self.waiting_publishers += 1
            try:
                await partition.space.wait()
            finally:
                self.bus.waiting_publishers -= 1
                self.waiting_publishers -= 1
            self.bus._check_open()
            hold = self._hold(tp)
        record = Record(
            self.name, tp.partition, partition.end, key, value, time.time_ns(), tuple(headers)
        )
        partition.append(record, hold)
        for group in self.bus._active_groups(self.name):
            owner = group.owner.get(tp)
            if isinstance(owner, MemorySubscription):
                owner.wakeup.fire()
        self._unyielded += 1
        if self._unyielded >= _YIELD_EVERY:  # let consumers run even when nothing makes us wait
            self._unyielded = 0
            await asyncio.sleep(0)
        return record

    def subscribe(self, group: str, *, start: Start = "earliest") -> MemorySubscription:
        return self.bus.subscribe(group, [self.name], start=start)


class MemorySubscription(Subscription):
    """A member of a consumer group of a :class:`MemoryBus` (see :class:`Subscription`)."""

    def __init__(self, bus: MemoryBus, group: Group, topics: tuple[str, ...]) -> None:
        self.bus = bus
        self._group = group
        self.group = group.name
        self.topics = topics
        self.closed = False
        self.wakeup = Signal()
        self._positions: dict[TopicPartition, int] = {}
        self._order: list[TopicPartition] = []
        self._turn = 0

    def assign(self, partitions: dict[TopicPartition, int]) -> None:
        """Called by the group on every rebalance; keeps the positions of kept partitions."""
        positions = {tp: self._positions.get(tp, start) for tp, start in partitions.items()}
        for tp, position in positions.items():
            base = self.bus._log_of(tp).base
            if position < base:
                log.warning(
                    "group %s resumes %s[%d] at offset %d: offsets %d..%d were dropped while"
                    " the group had no members",
                    self.group,
                    tp.topic,
                    tp.partition,
                    base,
                    position,
                    base - 1,
                )
                positions[tp] = base
        self._positions = positions
        self._order = sorted(positions)
        self.wakeup.fire()

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._positions)

    def progress(self) -> dict[TopicPartition, PartitionProgress]:
        """The logs are in this process: their ends are always current."""
        now = time.time_ns()
        log_of = self.bus._log_of
        return {
            tp: PartitionProgress(position, log_of(tp).end, now)
            for tp, position in self._positions.items()
        }

    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        if max_records < 1 or timeout < 0:
            raise ValueError("max_records must be positive and timeout not negative")
        self._check_open()
        records = self._take(max_records)
        if records or timeout == 0:
            return records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not records and not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    await self.wakeup.wait()
            except TimeoutError:
                pass
            if not self.closed:
                records = self._take(max_records)
        return records

    def _take(self, limit: int) -> list[Record]:
        """Read the assigned partitions in turn, starting one further each call (fairness)."""
        out: list[Record] = []
        order = self._order
        if not order:
            return out
        first = self._turn % len(order)
        self._turn += 1
        for tp in order[first:] + order[:first]:
            records = self.bus._log_of(tp).read(self._positions[tp], limit - len(out))
            if records:
                out.extend(records)
                self._positions[tp] = records[-1].offset + 1
                if len(out) >= limit:
                    break
        return out

    async def commit(self, offsets: Offsets) -> None:
        self._check_open()
        checked: dict[TopicPartition, int] = {}
        left_out: list[tuple[str, int]] = []
        for (topic, partition), offset in offsets.items():
            tp = TopicPartition(topic, partition)
            if tp not in self._positions:
                left_out.append(tp)
                continue
            end = self.bus._log_of(tp).end
            if not 0 <= offset <= end:
                raise ValueError(f"offset {offset} for {topic}[{partition}] is not in 0..{end}")
            checked[tp] = offset
        tell_left_out(self.group, left_out)
        self._group.committed.update(checked)
        for tp in checked:
            self.bus._log_of(tp).space.fire()

    async def committed(self) -> dict[TopicPartition, int]:
        return {tp: o for tp, o in self._group.committed.items() if tp.topic in self.topics}

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._positions = {}
        self._order = []
        self._group.leave(self)
        self.bus._forget(self)
        self.wakeup.fire()

    def _check_open(self) -> None:
        if self.closed:
            raise BusClosedError(f"this subscription of group {self.group} is closed")

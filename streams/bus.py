"""The bus interface: keyed records on partitioned topics, read by consumer groups.

The semantics are Kafka's, so that the in-process adapter (:mod:`streams.memory`) and the Kafka
adapter pass the same contract suite (``tests/streams/contract.py``):

- A topic has a fixed number of partitions. ``Topic.publish(key, value)`` appends the record to
  partition :func:`streams.partitioning.partition_for` ``(key, partitions)`` (murmur2, as Kafka's
  default partitioner), so one key always lands on one partition and keeps its order there.
  Offsets count from 0 in each partition.
- ``publish`` returns once the record is in the log, with its offset. It awaits while the
  adapter's buffer for that partition is full: that is the backpressure.
- ``Bus.subscribe(group, topics, start=...)`` (or ``Topic.subscribe``) adds a member to a
  consumer group. The group's members split the partitions of its topics between them; when a
  member closes, its partitions go to the others. A group reads from its committed offsets; where
  it has none, from the oldest retained record (``"earliest"``) or from the end (``"latest"``).
- ``Subscription.poll(max_records, timeout)`` returns up to ``max_records`` records, waiting up
  to ``timeout`` seconds for the first one (an empty list when none came).
- A record may carry ``headers``, ``(name, bytes)`` pairs (Kafka's record headers), read back
  as published, in order; the platform puts the W3C trace context of sampled work there
  (:mod:`telemetry.tracing`). Most records carry none.
- ``Subscription.commit(offsets)`` stores, for each ``(topic, partition)``, the *next* offset to
  read (handled record's offset + 1; see :func:`next_offsets`). Nothing commits by itself: a
  consumer commits after the effect of its records is stored, so delivery is at least once;
  records polled but not committed are delivered again after a member closes.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, NamedTuple, Self

from streams.partitioning import partition_for

log = logging.getLogger(__name__)

Start = Literal["earliest", "latest"]
"""Where a group without committed offsets starts: the oldest retained record, or the end."""


class TopicPartition(NamedTuple):
    """One partition of one topic (a plain ``(topic, partition)`` tuple works too)."""

    topic: str
    partition: int


Headers = tuple[tuple[str, bytes], ...]
"""A record's headers: ``(name, value)`` pairs, in order (names may repeat, as in Kafka)."""

Offsets = Mapping[TopicPartition, int] | Mapping[tuple[str, int], int]
"""What ``commit`` takes: the next offset to read per ``(topic, partition)``."""


@dataclass(frozen=True, slots=True)
class Record:
    """A record in the log: where it is, its key and value, its publish time (UTC ns) and
    its headers."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp_ns: int
    headers: Headers = ()

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def next_offset(self) -> int:
        """The offset to commit once this record is handled."""
        return self.offset + 1


def check_headers(headers: Headers) -> None:
    """Refuse headers no adapter can carry: not ``(str, bytes)`` pairs."""
    for header in headers:
        if not (
            isinstance(header, tuple)
            and len(header) == 2
            and isinstance(header[0], str)
            and isinstance(header[1], bytes)
        ):
            raise TypeError(f"a header is a (str, bytes) pair, not {header!r}")


def check_subscription(group: str, topics: Collection[str], start: str) -> None:
    """Refuse what no adapter can subscribe: no group name, no topics, one string, a bad start."""
    if isinstance(topics, str):
        raise TypeError("topics must be a collection of names, not one string")
    if not topics:
        raise ValueError("subscribe to at least one topic")
    if start not in ("earliest", "latest"):
        raise ValueError(f"start must be 'earliest' or 'latest', not {start!r}")
    if not group:
        raise ValueError("a group needs a name")


def next_offsets(records: Iterable[Record]) -> dict[tuple[str, int], int]:
    """What to commit once ``records`` are handled: per partition, the highest offset + 1."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        tp = record.topic_partition
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """Where a member stands in one assigned partition, as the adapter knows it without asking
    the broker (see :meth:`Subscription.progress`)."""

    position: int
    """The next offset this member reads."""
    end: int | None
    """The partition's end (the offset the next record gets) as last heard; ``None`` before
    the adapter has heard it."""
    heard_ns: int | None
    """When the end was last heard from the log (Unix ns; Kafka: its last fetch answer)."""

    @property
    def lag(self) -> int | None:
        """Records after this member's position (``None`` while the end is unknown)."""
        return None if self.end is None else max(0, self.end - self.position)


class BusError(Exception):
    """A bus operation failed."""


class BusClosedError(BusError):
    """The bus or subscription is closed."""


class CommitFailedError(BusError):
    """A commit was refused (Kafka: the group moved on, e.g. a rebalance under way)."""


def partition_names(partitions: Iterable[tuple[str, int]]) -> str:
    """``partitions`` as logs name them, in order: ``md.ticks[0], md.ticks[3]`` (empty for
    none)."""
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions))


def tell_left_out(group: str, left_out: Collection[tuple[str, int]]) -> None:
    """Tell (at info) the partitions a commit of ``group`` left out: no longer this member's,
    their new owner resumes from its own commits."""
    if left_out:
        log.info(
            "group %s: %s no longer assigned to this member: left out of the commit",
            group,
            partition_names(left_out),
        )


class MessageTooLargeError(BusError, ValueError):
    """A record is larger than the bus accepts (Kafka's ``message.max.bytes``)."""


class Subscription(ABC):
    """One member of a consumer group; use as ``async with`` to close it at the end."""

    group: str
    topics: tuple[str, ...]

    @abstractmethod
    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Up to ``max_records`` records of the assigned partitions, in order per partition.

        Waits up to ``timeout`` seconds for the first record; returns ``[]`` if none came.
        Raises :class:`BusClosedError` once the subscription is closed.
        """

    async def idle(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds taking no record, a live member of the group all
        along: a consumer that holds all it may (a full write buffer) waits here instead of
        not polling, which on Kafka would drop it from the group once ``max_poll_interval``
        passed (its partitions rebalanced away, then back). The next :meth:`poll` goes on
        where the last one ended."""
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        await asyncio.sleep(timeout)

    @abstractmethod
    async def commit(self, offsets: Offsets) -> None:
        """Store the group's next offset to read for each ``(topic, partition)``.

        A partition not assigned to this member (moved to another member meanwhile) is left
        out, told once per commit (:func:`tell_left_out`), and the others are committed: the
        offsets owed for the partitions still owned are never dropped with it.
        """

    @abstractmethod
    async def committed(self) -> dict[TopicPartition, int]:
        """The group's committed offsets on this subscription's topics."""

    @abstractmethod
    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member reads now (may change when members come and go)."""

    def progress(self) -> dict[TopicPartition, PartitionProgress]:
        """The member's position and the end of each assigned partition whose position is
        fixed, from what the adapter already holds: no broker round trip, cheap enough for
        once a second (``{}`` from an adapter that knows neither)."""
        return {}

    @abstractmethod
    async def close(self) -> None:
        """Leave the group: its partitions go to the other members, from the committed offsets.

        A ``poll`` waiting at that moment returns ``[]``. Closing twice is harmless.
        """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class Topic(ABC):
    """A handle to publish on one topic and to subscribe to it alone."""

    name: str
    partitions: int

    @abstractmethod
    async def publish(self, key: bytes, value: bytes, *, headers: Headers = ()) -> Record:
        """Append a record to the key's partition; awaits while that partition is full.

        Raises :class:`MessageTooLargeError` for an oversized record and
        :class:`BusClosedError` once the bus is closed.
        """

    async def publish_many(
        self, items: Iterable[tuple[bytes, bytes]], *, headers: Headers = ()
    ) -> list[Record]:
        """Publish ``(key, value)`` pairs in order (adapters may pipeline them), each with
        ``headers``."""
        return [await self.publish(key, value, headers=headers) for key, value in items]

    @abstractmethod
    def subscribe(self, group: str, *, start: Start = "earliest") -> Subscription:
        """Join ``group`` as a member reading this topic."""

    def partition_for(self, key: bytes) -> int:
        """The partition records with ``key`` go to."""
        return partition_for(key, self.partitions)


class Bus(ABC):
    """Topics and consumer groups; use as ``async with`` to close everything at the end.

    ``cluster_id`` names the logs behind the bus: offsets mean something only within one
    cluster (Kafka's cluster id; a new one for every in-process bus), so whoever stores offsets
    of its own keeps them under it.
    """

    cluster_id: str

    @abstractmethod
    def topic(self, name: str) -> Topic:
        """The topic ``name`` (adapters create a missing topic with their default partitions)."""

    @abstractmethod
    def subscribe(
        self, group: str, topics: Collection[str], *, start: Start = "earliest"
    ) -> Subscription:
        """Join ``group`` as a member reading all of ``topics`` (a list, not one string)."""

    @abstractmethod
    async def close(self) -> None:
        """Close every subscription; waiting publishers raise :class:`BusClosedError`."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

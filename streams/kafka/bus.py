"""The Kafka adapter of the bus (:mod:`streams.bus`), on aiokafka.

- ``KafkaBus(settings)`` connects on ``start()`` (or ``async with``), waiting for an
  unreachable broker with backoff (:mod:`streams.kafka.retry`). ``cluster_id`` is the broker
  cluster's id, so offsets stored elsewhere (the storage writer's) are kept per cluster.
- Records go to ``partition_for(key, partitions)`` computed here (murmur2, like Java's default
  partitioner), never to the client's choice. The producer is idempotent with ``acks=all``;
  ``publish`` returns once the broker has the record. A producer that failed a send (a batch
  given up after ``request_timeout`` with the broker away) is replaced by a new one at the
  next send: the old one's sequence numbers no longer match the broker's. There is no
  bounded buffer: Kafka keeps records by time and size, and producers never wait for
  consumers.
- ``topic(name)`` knows the partition counts of the topics that existed at ``start``; a topic
  it has not seen is looked up, and created with the bus's default partitions, by a short
  blocking admin call (the platform's own topics are made up front: ``mdp kafka topics``).
- A subscription is an aiokafka consumer in a group with auto-commit off and
  ``read_committed`` isolation. ``assignment()`` lists a partition once its read position is
  fixed, so records published after a member is settled are never skipped with ``latest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import socket
import time
from collections.abc import Callable, Collection, Coroutine, Iterable
from types import TracebackType
from typing import Any, Final, Self

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, KafkaError, MessageSizeTooLargeError
from kafka.errors import KafkaError as SyncKafkaError

from streams.bus import (
    Bus,
    BusClosedError,
    BusError,
    CommitFailedError,
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
from streams.kafka.admin import KafkaAdmin, TopicSpec
from streams.kafka.retry import BrokerProblemError, until_reachable
from streams.kafka.settings import KafkaSettings

_TOPIC_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")
_MS: Final = 1_000_000


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def probe(servers: list[str], timeout: float = 2.0) -> None:
    """Raise :class:`ConnectionError` unless some server accepts a TCP connection (a quick
    check before the client libraries, which retry quietly for a long time on their own)."""
    problems = []
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout):
                return
        except (OSError, ValueError) as exc:
            problems.append(f"{server}: {exc.strerror if isinstance(exc, OSError) else exc}")
    raise ConnectionError("; ".join(problems))


async def connect_admin(
    settings: KafkaSettings, say: Callable[[str], None] | None = None
) -> tuple[KafkaAdmin, str]:
    """An admin connection and the cluster id, waiting for the broker with backoff."""

    async def attempt() -> tuple[KafkaAdmin, str]:
        await asyncio.to_thread(probe, settings.servers)
        try:
            admin = await asyncio.to_thread(KafkaAdmin, settings)
        except SyncKafkaError as exc:
            raise BrokerProblemError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return admin, await asyncio.to_thread(admin.cluster_id)
        except SyncKafkaError as exc:
            admin.close()
            raise BrokerProblemError(f"{type(exc).__name__}: {exc}") from exc

    return await until_reachable(attempt, settings.bootstrap, settings.connect_timeout, say)


class KafkaBus(Bus):
    """The bus on a Kafka cluster (see the module text); ``partitions`` is the default count
    of topics it creates."""

    def __init__(
        self,
        settings: KafkaSettings | None = None,
        *,
        partitions: int = 4,
        create_topics: bool = True,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be positive")
        self.settings = settings or KafkaSettings()
        self.default_partitions = partitions
        self.create_topics = create_topics
        self.cluster_id = ""
        self.closed = False
        self._say = say
        self._admin: KafkaAdmin | None = None
        self._producer: AIOKafkaProducer | None = None
        self._renew = False
        self._renewing = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        self._partitions: dict[str, int] = {}
        self._topics: dict[str, KafkaTopic] = {}
        self._subscriptions: set[KafkaSubscription] = set()

    async def start(self) -> Self:
        """Connect (waiting for the broker within ``settings.connect_timeout``)."""
        if self._producer is not None:
            return self
        self._admin, self.cluster_id = await connect_admin(self.settings, self._say)
        self._partitions = await asyncio.to_thread(self._admin.partitions)
        self._producer = await self._new_producer()
        return self

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.servers,
            client_id=f"{self.settings.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            max_request_size=self.settings.max_message_bytes + 64 * 1024,
            request_timeout_ms=_ms(self.settings.request_timeout),
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(KafkaError):
                await producer.stop()
            raise
        return producer

    def _gave_up(self, producer: AIOKafkaProducer) -> None:
        """``producer`` failed a send (a batch held ``request_timeout`` while the broker was
        away is given up): its idempotence sequence is off from there, and the broker would
        refuse each later batch as out of order, so the next send makes a new producer."""
        if producer is self._producer:
            self._renew = True

    async def _sending_producer(self) -> AIOKafkaProducer:
        """The producer to send with; a new one in place of one that gave up (raises
        :class:`KafkaError` while no broker takes the new one)."""
        if self._renew:
            async with self._renewing:
                if self._renew:
                    self._check_open()
                    fresh = await self._new_producer()
                    old, self._producer, self._renew = self._producer, fresh, False
                    if old is not None:  # its batches still held end on their own
                        retiring = asyncio.create_task(_stop_quietly(old))
                        self._retired.add(retiring)
                        retiring.add_done_callback(self._retired.discard)
        return self.producer

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def producer(self) -> AIOKafkaProducer:
        self._check_open()
        if self._producer is None:
            raise BusError("the Kafka bus is not started: use `async with KafkaBus(...)`")
        return self._producer

    def topic(self, name: str) -> KafkaTopic:
        topic = self._topics.get(name)
        if topic is None:
            if _TOPIC_NAME.fullmatch(name) is None:
                raise ValueError(f"bad topic name {name!r}: use 1-249 of A-Z a-z 0-9 . _ -")
            topic = self._topics[name] = KafkaTopic(self, name, self._partitions_of(name))
        return topic

    def _partitions_of(self, name: str) -> int:
        known = self._partitions.get(name)
        if known is not None:
            return known
        if self._admin is None:
            raise BusError("the Kafka bus is not started: use `async with KafkaBus(...)`")
        found = self._admin.partitions([name])  # blocking, once per new topic name
        if name not in found:
            if not self.create_topics:
                raise ValueError(f"Kafka has no topic {name} (create it: mdp kafka topics)")
            self._admin.ensure([TopicSpec(name, self.default_partitions)])
            found = self._admin.partitions([name])
        self._partitions[name] = found[name]
        return found[name]

    def subscribe(
        self,
        group: str,
        topics: Collection[str],
        *,
        start: Start = "earliest",
        rebalance: Rebalance | None = None,
        fetch_bytes: int = 0,
    ) -> KafkaSubscription:
        """A member of ``group`` (see :class:`streams.bus.Bus`); ``rebalance`` is told which
        partitions it loses and gains, from the consumer's coordinator task (between polls,
        not inside one: see :class:`Rebalance`). ``fetch_bytes``: the
        most bytes one fetch brings of a partition (at least a record's most, the default),
        so a poll after a fetch may return up to that much of each partition."""
        check_subscription(group, topics, start)
        self._check_open()
        names = tuple(self.topic(name).name for name in dict.fromkeys(topics))
        subscription = KafkaSubscription(self, group, names, start, rebalance, fetch_bytes)
        self._subscriptions.add(subscription)
        return subscription

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for subscription in list(self._subscriptions):
            await subscription.close()
        if self._producer is not None:
            await _stop_quietly(self._producer)
        if self._retired:
            await asyncio.wait(self._retired)
        if self._admin is not None:
            await asyncio.to_thread(self._admin.close)

    def _check_open(self) -> None:
        if self.closed:
            raise BusClosedError("the bus is closed")

    def _forget(self, subscription: KafkaSubscription) -> None:
        self._subscriptions.discard(subscription)


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(KafkaError):
        await producer.stop()


class KafkaTopic(Topic):
    """A topic of a :class:`KafkaBus` (get it with :meth:`KafkaBus.topic`)."""

    def __init__(self, bus: KafkaBus, name: str, partitions: int) -> None:
        self.bus = bus
        self.name = name
        self.partitions = partitions

    async def publish(self, key: bytes, value: bytes, *, headers: Headers = ()) -> Record:
        return (await self.publish_many([(key, value)], headers=headers))[0]

    async def publish_many(
        self, items: Iterable[tuple[bytes, bytes]], *, headers: Headers = ()
    ) -> list[Record]:
        """Send every record at once (pipelined), then wait until the broker has them all."""
        try:
            producer = await self.bus._sending_producer()
        except KafkaError as exc:
            raise BusError(f"publishing to {self.name} failed: {exc}") from exc
        if headers:
            check_headers(headers)
        headers = tuple(headers)
        sent = list(headers) or None
        pending: list[tuple[bytes, bytes, int, int, asyncio.Future[Any]]] = []
        for key, value in items:
            self._check(key, value)
            partition = self.partition_for(key)
            stamp = time.time_ns() // _MS
            try:
                future = await producer.send(
                    self.name,
                    value,
                    key=key,
                    partition=partition,
                    timestamp_ms=stamp,
                    headers=sent,
                )
            except MessageSizeTooLargeError as exc:
                raise MessageTooLargeError(f"record on {self.name}: {exc}") from exc
            except KafkaError as exc:
                self.bus._gave_up(producer)
                raise BusError(f"publishing to {self.name} failed: {exc}") from exc
            pending.append((key, value, partition, stamp, future))
        records = []
        for key, value, partition, stamp, future in pending:
            try:
                metadata = await future
            except MessageSizeTooLargeError as exc:
                raise MessageTooLargeError(f"record on {self.name}: {exc}") from exc
            except KafkaError as exc:
                self.bus._gave_up(producer)
                raise BusError(f"publishing to {self.name} failed: {exc}") from exc
            records.append(
                Record(self.name, partition, metadata.offset, key, value, stamp * _MS, headers)
            )
        return records

    def _check(self, key: bytes, value: bytes) -> None:
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            raise TypeError("key and value must be bytes")
        limit = self.bus.settings.max_message_bytes
        if len(key) + len(value) > limit:
            raise MessageTooLargeError(
                f"record of {len(key) + len(value)} bytes on {self.name} exceeds"
                f" max_message_bytes={limit}"
            )
        self.bus._check_open()

    def subscribe(self, group: str, *, start: Start = "earliest") -> KafkaSubscription:
        return self.bus.subscribe(group, [self.name], start=start)


async def _stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """``consumer.stop()``, to the end. While the broker is away aiokafka's fetcher re-raises
    the cancel of a fetch that was waiting out its retry backoff (not a cancel of ours), which
    cut the stop short: the group was left, but the other fetches and the client's
    connections were not closed, and the cancel ended the process with a traceback."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        pending = list(consumer._fetcher._pending_tasks)
        for fetch in pending:
            fetch.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await consumer._client.close()


class GroupJoinError(BusError):
    """A subscription's member could not start or join its group (its members use another
    assignment protocol, say): that subscription stays so; only a new one may join."""


class Rebalance:
    """Told of a subscription's rebalances (:meth:`KafkaBus.subscribe`) by aiokafka's group
    coordinator, which runs as a task of its own: the calls may come while the member's own
    loop is between two polls, in the middle of its work, so what they touch must be guarded
    against it (the candle worker's lock). :meth:`revoked` comes before the partitions go to
    other members (a state saved there is what they resume from), :meth:`assigned` once the
    new ones are this member's."""

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """``partitions`` are no longer this member's."""

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """``partitions`` are this member's now (all of them, not only the new ones)."""


def _ours(tps: Any) -> set[TopicPartition]:
    return {TopicPartition(tp.topic, tp.partition) for tp in tps}


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription, rebalance: Rebalance | None) -> None:
        self._subscription = subscription
        self._rebalance = rebalance

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._subscription._positioned.clear()
        self._subscription._next.clear()
        if self._rebalance is not None:
            await self._rebalance.revoked(_ours(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._subscription._positioned.clear()
        self._subscription._next.clear()
        if self._rebalance is not None:
            await self._rebalance.assigned(_ours(assigned))


class KafkaSubscription(Subscription):
    """A member of a consumer group on Kafka (see :class:`streams.bus.Subscription`)."""

    def __init__(
        self,
        bus: KafkaBus,
        group: str,
        topics: tuple[str, ...],
        start: Start,
        rebalance: Rebalance | None = None,
        fetch_bytes: int = 0,
    ) -> None:
        self.bus = bus
        self.group = group
        self.topics = topics
        self.closed = False
        settings = bus.settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.servers,
            client_id=f"{settings.client_id}-{group}",
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset=start,
            isolation_level="read_committed",
            session_timeout_ms=_ms(settings.session_timeout),
            heartbeat_interval_ms=_ms(settings.heartbeat_interval),
            max_poll_interval_ms=_ms(settings.max_poll_interval),
            request_timeout_ms=_ms(settings.request_timeout),
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=max(fetch_bytes, settings.max_message_bytes + 64 * 1024),
        )
        self._consumer.subscribe(topics=list(topics), listener=_Listener(self, rebalance))
        self._positioned: set[aiokafka.TopicPartition] = set()
        self._next: dict[aiokafka.TopicPartition, int] = {}
        """The position of each positioned partition, as the polls moved it."""
        self._starting = asyncio.ensure_future(self._consumer.start())
        self._polling: asyncio.Task[Any] | None = None

    async def _ready(self) -> None:
        try:
            await self._starting
        except KafkaError as exc:
            raise GroupJoinError(f"group {self.group} could not join: {exc}") from exc

    def assignment(self) -> frozenset[TopicPartition]:
        if self.closed or not self._starting.done():
            return frozenset()
        current = self._consumer.assignment()
        return frozenset(
            TopicPartition(tp.topic, tp.partition) for tp in current if tp in self._positioned
        )

    async def _fix_positions(self) -> None:
        """Resolve the read position of newly assigned partitions (``latest`` is now)."""
        for tp in self._consumer.assignment() - self._positioned:
            self._next[tp] = await self._consumer.position(tp)
            self._positioned.add(tp)

    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        if max_records < 1 or timeout < 0:
            raise ValueError("max_records must be positive and timeout not negative")
        return await self._polled(functools.partial(self._fetch, max_records, timeout))

    async def idle(self, timeout: float) -> None:
        """A poll of the assigned partitions paused: it keeps the member in its group and
        takes nothing (a partition assigned meanwhile, not paused, is sought back to what it
        returned)."""
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        await self._polled(functools.partial(self._idle, timeout))

    async def _idle(self, timeout: float) -> list[Record]:
        await self._fix_positions()
        held = self._consumer.assignment()
        self._consumer.pause(*held)
        try:
            batches = await self._consumer.getmany(timeout_ms=_ms(timeout))
        finally:
            self._consumer.resume(*(held & self._consumer.assignment()))
        for tp, messages in batches.items():
            if messages:
                self._consumer.seek(tp, messages[0].offset)
        return []

    async def _polled(self, fetch: Callable[[], Coroutine[Any, Any, list[Record]]]) -> list[Record]:
        """Run one fetch as the poll in progress (:meth:`close` cancels it)."""
        self._check_open()
        await self._ready()
        task = asyncio.ensure_future(fetch())
        self._polling = task
        try:
            await asyncio.wait([task])
        finally:
            self._polling = None
        if task.cancelled():
            if self.closed:
                return []
            raise asyncio.CancelledError
        try:
            return task.result()
        except ConsumerStoppedError:
            if self.closed:
                return []
            raise BusClosedError(f"this subscription of group {self.group} is closed") from None
        except KafkaError as exc:
            raise BusError(f"polling group {self.group} failed: {exc}") from exc

    async def _fetch(self, max_records: int, timeout: float) -> list[Record]:
        await self._fix_positions()
        batches = await self._consumer.getmany(timeout_ms=_ms(timeout), max_records=max_records)
        await self._fix_positions()
        records: list[Record] = []
        for tp, messages in batches.items():
            if messages and tp in self._positioned:
                self._next[tp] = messages[-1].offset + 1
            for m in messages:
                records.append(
                    Record(
                        tp.topic,
                        tp.partition,
                        m.offset,
                        m.key if m.key is not None else b"",
                        m.value if m.value is not None else b"",
                        m.timestamp * _MS,
                        tuple(m.headers) if m.headers else (),
                    )
                )
        return records

    def progress(self) -> dict[TopicPartition, PartitionProgress]:
        """Positions as the polls moved them; the end is the last stable offset (the
        ``read_committed`` end; the high watermark where the broker gives none) and the time
        of the last fetch answer for the partition, both from the consumer's last fetch
        (aiokafka keeps them): nothing is asked of the broker."""
        if self.closed or not self._starting.done():
            return {}
        consumer = self._consumer
        found: dict[TopicPartition, PartitionProgress] = {}
        assigned = consumer.assignment()
        for tp, position in list(self._next.items()):
            if tp not in assigned:
                continue
            end = consumer.last_stable_offset(tp)
            if end is None or end < 0:
                end = consumer.highwater(tp)
            heard = consumer.last_poll_timestamp(tp)
            found[TopicPartition(tp.topic, tp.partition)] = PartitionProgress(
                position, end, None if heard is None else heard * _MS
            )
        return found

    async def commit(self, offsets: Offsets) -> None:
        self._check_open()
        await self._ready()
        assigned = self._consumer.assignment()
        prepared: dict[aiokafka.TopicPartition, int] = {}
        left_out: list[tuple[str, int]] = []
        for (topic, partition), offset in offsets.items():
            tp = aiokafka.TopicPartition(topic, partition)
            if offset < 0:
                raise ValueError(f"offset {offset} for {topic}[{partition}] is negative")
            if tp in assigned:
                prepared[tp] = offset
            else:
                left_out.append((topic, partition))
        tell_left_out(self.group, left_out)
        if not prepared:
            return
        try:
            await self._consumer.commit(prepared)
        except KafkaError as exc:
            raise CommitFailedError(f"group {self.group} could not commit: {exc}") from exc

    async def committed(self) -> dict[TopicPartition, int]:
        self._check_open()
        await self._ready()
        found: dict[TopicPartition, int] = {}
        for topic in self.topics:
            partitions = self._consumer.partitions_for_topic(topic) or range(
                self.bus.topic(topic).partitions
            )
            for partition in sorted(partitions):
                offset = await self._consumer.committed(aiokafka.TopicPartition(topic, partition))
                if offset is not None and offset >= 0:
                    found[TopicPartition(topic, partition)] = offset
        return found

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._polling is not None:
            self._polling.cancel()
        with contextlib.suppress(Exception):
            await self._starting
        with contextlib.suppress(KafkaError):
            await _stop_consumer(self._consumer)
        self.bus._forget(self)

    def _check_open(self) -> None:
        if self.closed:
            raise BusClosedError(f"this subscription of group {self.group} is closed")

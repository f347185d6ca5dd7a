"""The processor loop: every stream processor of the platform is this loop plus a pure step.

One round::

    poll a batch ─► durability.fresh ─► decode_batch ─► step(batch, now, caught_up)
        ─► durability.ahead ─► publish outputs ─► durability.behind ─► commit what is covered

- :func:`decode_batch` decodes each record once, with the codec its topic has in
  :data:`core.topic_codecs.REGISTRY`. A record its codec refuses becomes a
  :class:`~core.codecs.RejectedMessage` naming ``topic/partition/offset`` (logged here, once);
  the step decides whether to publish it (only the processor that owns a topic's rejects
  does: the engine, for ``md.ticks``), the others only count it.
- The step is pure: the decoded batch and the clock in, an :class:`Outcome` out (messages to
  publish, effects for the durability hook). It may keep state of its own (the candle
  engine); it does no I/O.
- The :class:`Durability` hook makes the effects durable and says which offsets the durable
  state covers; only those are committed. :meth:`Durability.ahead` runs before the outputs
  go out (a write-ahead journal), :meth:`Durability.behind` after (a checkpoint, a store
  transaction). ``docs/architecture.md`` ("Processors") states the contract.
- ``commit_behind``: a processor whose effects are done when its round returns (the gateway's
  fan-out) may commit in the background: the commit of a round runs while the next round
  polls, one commit in flight, the offsets of rounds done meanwhile in the next; a failed
  commit fails the loop at its next round (logged instead when the loop failed first), and a
  stop waits for it. The contract holds (a commit starts only after the effects of the rounds
  it covers), and no round waits for the broker's answer to a commit.
- Traces (:mod:`telemetry.tracing`): a round whose records carry a sampled trace context is
  one consumer span (``trace_name``), their child; the outputs it publishes carry its context
  in their headers. A round without one makes no span.

While :meth:`Processor.consume` runs, a :class:`~streams.consumers.ConsumerWatch` of the
process's :data:`~streams.consumers.WATCHES` follows it: the consumer lag metric and the
``bus`` and ``lag`` checks of ``/readyz`` read it (the subscription's progress is read once
a second, not per record).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from core.codecs import CodecError, RejectedMessage
from core.topic_codecs import REGISTRY, TopicCodec, codec_for
from streams.bus import (
    Bus,
    CommitFailedError,
    Offsets,
    Record,
    Start,
    Subscription,
    next_offsets,
)
from streams.consumers import WATCHES, ConsumerWatch
from telemetry.tracing import headers_now, round_span

log = logging.getLogger(__name__)

E = TypeVar("E")

HOLD_SLICE = 0.25
"""The longest idle on the subscription while the hook holds all it may: how soon a stop
is seen then."""

Output = tuple[str, bytes, bytes]
"""A message to publish: topic, key, value."""


@dataclass(slots=True)
class Batch:
    """One poll's records, decoded: ``messages[i]`` is ``records[i]``'s message, ``None``
    where its codec refused it (then one of ``undecodable`` says why)."""

    records: Sequence[Record]
    messages: list[Any]
    undecodable: list[RejectedMessage]

    def slice(self, start: int, stop: int) -> Batch:
        """The records ``[start, stop)`` with their messages and rejects."""
        undecodable = self.undecodable
        if undecodable:
            before = self.messages[:start].count(None)
            undecodable = undecodable[before : before + self.messages[start:stop].count(None)]
        return Batch(self.records[start:stop], self.messages[start:stop], undecodable)


def decode_batch(
    records: Sequence[Record],
    source: str,
    registry: Mapping[str, TopicCodec[Any]] = REGISTRY,
) -> Batch:
    """Decode every record once with its topic's codec (looked up once per topic)."""
    messages: list[Any] = []
    undecodable: list[RejectedMessage] = []
    decoders: dict[str, Callable[[bytes], Any]] = {}
    for record in records:
        decode = decoders.get(record.topic)
        if decode is None:
            decode = decoders[record.topic] = codec_for(record.topic, registry).decode
        try:
            messages.append(decode(record.value))
        except CodecError as exc:
            origin = f"{record.topic}/{record.partition}/{record.offset}"
            log.warning("%s: undecodable record at %s: %s", source, origin, exc)
            messages.append(None)
            undecodable.append(RejectedMessage.undecodable(record.value, exc, source, origin))
    return Batch(records, messages, undecodable)


@dataclass(slots=True)
class Outcome(Generic[E]):
    """What a step hands back: the messages to publish and its effects for the hook."""

    outputs: list[Output]
    effects: E


Step = Callable[[Batch, int, bool], Outcome[E]]
"""The pure part, called as ``step(batch, now_ns, caught_up)``: ``caught_up`` says the poll
found nothing and no input is held back, so the wall clock ``now_ns`` may move idle state
on."""


@dataclass(slots=True)
class Round(Generic[E]):
    """One round as the durability hook sees it."""

    polled: Sequence[Record]
    """Everything polled (records the durable state already held included)."""
    batch: Batch
    outcome: Outcome[E]
    offsets: dict[tuple[str, int], int]
    """The next offsets of ``polled``: what committing the whole round means."""


class Durability(Generic[E]):
    """Makes a step's effects durable; this base class is the hook of a processor whose
    state needs none (what it has handled and published is done): it covers every round
    at once.

    A hook never covers an offset before the outputs of the records below it are published
    (:meth:`behind` runs after the publish) and the state they produced can be rebuilt
    after a crash.
    """

    async def start(self) -> None:
        """Before the first poll (load where the durable state stands)."""

    def fresh(self, records: list[Record]) -> list[Record]:
        """The records the durable state does not hold yet (a replay after a crash)."""
        return records

    def read_wait(self, timeout: float) -> tuple[float, bool]:
        """How long the next read may wait, and whether it polls (``False``: it only
        pauses, the hook holds all it may: the bus keeps the rest)."""
        return timeout, True

    @property
    def idle(self) -> bool:
        """Nothing read is waiting to be made durable (a drain may end)."""
        return True

    @property
    def failing(self) -> bool:
        """The last attempt to make effects durable failed (a drain ends at once)."""
        return False

    async def ahead(self, round: Round[E]) -> None:
        """Before the outputs are published: a write-ahead record of the step. Raising
        publishes and commits nothing of the round."""

    async def behind(self, round: Round[E]) -> Offsets:
        """After the outputs are published: the offsets that may be committed now."""
        return round.offsets

    async def finish(self, drained: bool) -> Offsets:
        """At the end (``drained``: after :meth:`Processor.drain`, else a stop): wait for
        what is in flight; the offsets that may be committed last."""
        return {}


@dataclass(slots=True)
class Processor(Generic[E]):
    """The loop (see the module text) over ``topics`` in ``group``, until :meth:`stop` or,
    after :meth:`drain`, until a poll finds nothing and the hook is idle."""

    bus: Bus
    group: str
    topics: Collection[str]
    step: Step[E]
    durability: Durability[E] = field(default_factory=Durability)
    start: Start = "earliest"
    max_records: int = 500
    poll_timeout: float = 0.1
    clock: Callable[[], int] = time.time_ns
    input_held: Callable[[], bool] = lambda: False
    """Whether input is held back before the bus (a feed waiting for room): then an empty
    poll is no sign that the input was read to its end (``caught_up`` stays false)."""
    publisher: Callable[[list[Output]], Awaitable[None]] | None = None
    """How outputs go out; default :func:`publish` on ``bus`` (a publisher of its own puts
    :func:`telemetry.tracing.headers_now` on its records)."""
    trace_name: str = ""
    """The name of a traced round's span (default ``process <group>``)."""
    went_through: Callable[[int], object] = lambda taken: None
    """Told after each round that went through (made durable, what it covers committed, or
    handed to the background commit), with how many records it took: a loop that rides out
    outages tells their end by it."""
    commit_behind: bool = False
    """Commit in the background, one commit in flight (see the module text)."""
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: bool = False
    _committing: asyncio.Task[None] | None = None
    _owed: dict[tuple[str, int], int] = field(default_factory=dict)
    """Offsets of rounds done while a commit was in flight: the next commit's."""

    _publish: Callable[[list[Output]], Awaitable[None]] = field(init=False)

    def __post_init__(self) -> None:
        self._publish = self.publisher or functools.partial(publish, self.bus)
        self.trace_name = self.trace_name or f"process {self.group}"

    def stop(self) -> None:
        """End after the current round; the hook's :meth:`~Durability.finish` says what is
        committed then."""
        self._stopping.set()

    def drain(self) -> None:
        """End once a poll finds nothing and the hook holds nothing (or fails)."""
        self._draining = True

    async def run(self) -> None:
        """Subscribe, run :meth:`consume`, leave the group."""
        async with self.bus.subscribe(self.group, list(self.topics), start=self.start) as sub:
            await self.consume(sub)

    async def consume(self, subscription: Subscription) -> None:
        """The loop on a subscription the caller opened (and closes)."""
        durability = self.durability
        watch = ConsumerWatch(self.group, time.monotonic())
        forget = WATCHES.add(watch)
        try:
            await durability.start()
            while not self._stopping.is_set():
                polled = await self._read(subscription, watch)
                if self._draining and (durability.failing or (not polled and durability.idle)):
                    break
                await self.round(subscription, polled)
            await self._settle_commits(subscription)
            await self._commit(subscription, await durability.finish(self._draining))
        finally:
            forget()
            self._drop_commit()

    async def round(self, subscription: Subscription, polled: list[Record]) -> None:
        """:meth:`handle` one poll's records, then commit what the durable state covers (or
        hand it to the background commit: ``commit_behind``)."""
        offsets = await self.handle(polled)
        if self.commit_behind:
            self._commit_in_background(subscription, offsets)
        else:
            await self._commit(subscription, offsets)
        self.went_through(len(polled))

    def _commit_in_background(self, subscription: Subscription, offsets: Offsets) -> None:
        """Start committing ``offsets`` and those owed unless a commit is in flight (then
        they are owed); a commit that failed raises here, at the round after it."""
        task = self._committing
        if task is not None and task.done():
            self._committing = None
            task.result()
        for (topic, partition), offset in offsets.items():
            self._owed[topic, partition] = offset
        if self._owed and self._committing is None:
            owed, self._owed = self._owed, {}
            self._committing = asyncio.create_task(
                self._commit(subscription, owed), name=f"commit {self.group}"
            )

    def _drop_commit(self) -> None:
        """The loop ended without settling its commits (it failed): the commit in flight is
        cancelled, not waited for, and one that failed is told (the loop's own exception is
        the one raised)."""
        task, self._committing = self._committing, None
        if task is None:
            return
        tell = tell_failed_commit(
            log,
            f"{task.get_name()}: a background commit failed as the loop ended on a failure of"
            " its own",
        )
        if task.done():
            tell(task)
        else:
            task.cancel()
            task.add_done_callback(tell)

    async def _settle_commits(self, subscription: Subscription) -> None:
        """Wait for the commit in flight, then commit what is owed (before a stop's last)."""
        task, self._committing = self._committing, None
        if task is not None:
            await task
        owed, self._owed = self._owed, {}
        await self._commit(subscription, owed)

    async def handle(self, polled: list[Record]) -> Offsets:
        """Decode, step, publish and make durable one poll's records; the offsets that may
        be committed now. A shell whose consumer polls and commits by itself (the Faust
        agent of ``mdp worker``) calls this and acknowledges what it returns."""
        for record in polled:
            if record.headers:
                return await self._traced(polled)
        return await self._handle(polled)

    async def _traced(self, polled: list[Record]) -> Offsets:
        """:meth:`_handle` inside the round's span, when its records carry a sampled context."""
        attributes = {"messaging.consumer.group.name": self.group}
        with round_span(self.trace_name, polled, attributes):
            return await self._handle(polled)

    async def _handle(self, polled: list[Record]) -> Offsets:
        durability = self.durability
        records = durability.fresh(polled)
        batch = decode_batch(records, self.group)
        caught_up = not polled and not self.input_held()
        outcome = self.step(batch, self.clock(), caught_up)
        current = Round(polled, batch, outcome, next_offsets(polled))
        await durability.ahead(current)
        if outcome.outputs:
            await self._publish(outcome.outputs)
        return await durability.behind(current)

    async def _read(self, subscription: Subscription, watch: ConsumerWatch) -> list[Record]:
        wait, poll = self.durability.read_wait(self.poll_timeout)
        if poll:
            records = await subscription.poll(self.max_records, wait)
        else:
            records = []
            await self._hold(subscription, wait)
        now = time.monotonic()
        if watch.due(now, poll):
            watch.look(now, time.time_ns(), subscription.progress())
        return records

    async def _hold(self, subscription: Subscription, wait: float) -> None:
        """Take nothing for ``wait`` seconds (or until stopped), idling on the subscription
        in slices of :data:`HOLD_SLICE`, so the member stays in its group however long the
        hook holds all it may (a database outage that fills the writer's buffer)."""
        end = time.monotonic() + wait
        while not self._stopping.is_set() and (left := end - time.monotonic()) > 0:
            await subscription.idle(min(left, HOLD_SLICE))

    async def _commit(self, subscription: Subscription, offsets: Offsets) -> None:
        """Commit what the durable state covers. A partition that moved to another member
        meanwhile is left out by the bus, and a commit the group refuses (a rebalance under
        way) only told: the new owner resumes from the durable state."""
        if not offsets:
            return
        try:
            await subscription.commit(offsets)
        except CommitFailedError as exc:
            log.warning("offsets stored but not committed on the bus: %s", exc)


def tell_failed_commit(logger: logging.Logger, what: str) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback for a background commit's task that nobody will raise: its failure
    is logged on ``logger`` at error, with its traceback, as ``<what>: <the failure>`` (read
    here, never left to asyncio's "never retrieved"); a task cancelled or that ended well
    is not told. Used by :class:`Processor` (``commit_behind``, for a commit whose loop
    failed first) and the batch consumer's periodic commit."""

    def tell(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("%s: %s", what, str(exc) or type(exc).__name__, exc_info=exc)

    return tell


async def publish(bus: Bus, outputs: list[Output]) -> None:
    """One ``publish_many`` per topic (adapters pipeline it), order kept within each; in a
    sampled span, every record carries its trace context."""
    headers = headers_now()
    by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
    for topic, key, value in outputs:
        items = by_topic.get(topic)
        if items is None:
            items = by_topic[topic] = []
        items.append((key, value))
    for topic, items in by_topic.items():
        await bus.topic(topic).publish_many(items, headers=headers)

"""The alert evaluator as a running processor: ``md.ticks`` and ``md.candles`` in, firings
recorded with the evaluator's state and offsets, published on ``alerts.events`` by the relay.

It is the platform's processor loop (:class:`streams.processor.Processor`) with the pure step
:func:`main_api.alerts.processing.evaluate` and the hook :class:`Evaluating`:

- **Ownership.** Before each poll and after it, the partitions assigned to this member are
  compared with the states held (:meth:`Evaluating.own`): a partition gone is dropped once
  the round in flight has committed (its state is then stored: every round commits its own;
  dropped before, the next owner's claim could fence that round), a new one is claimed
  (:func:`main_api.alerts.states.claim`, which fences the previous owner), restored from its
  rows and brought up to the last alert change; the rows that catch-up changed are stored
  then (for a partition new to the group, every alert of it), not by its first round.
  :meth:`Evaluating.fresh` drops the records below a state's stored offset (the bus delivers
  from its last commit, which is never past the stored offset).
- **Durability.** :meth:`Evaluating.behind` stores, in one transaction, each moved state
  (the evaluator rows its round changed, :meth:`~main_api.alerts.AlertEvaluator.delta`; next
  offset, last change applied; only while its epoch is still the row's) and the round's
  firings (:func:`main_api.store.record_firings`, keyed by ``fire_id``). Only
  then are the offsets committed on the bus, and the new firings handed to the relay, which
  publishes them from memory (:meth:`~main_api.alerts.relay.FiredRelay.hand`).
- **Pipelined.** A round's transaction runs while the loop polls and steps the next round
  (its deltas are taken before, so the next step cannot change what it stores); the next
  :meth:`Evaluating.behind` waits for it before it starts its own, so at most one is in
  flight and rounds commit in order. Its offsets are handed to the loop to commit after it,
  and its failure is raised there (the loop ends and starts again from the stored states,
  which the rounds in memory past it do not touch). A claim or an alert change waits for
  the round in flight first (:meth:`Evaluating.settle`): the fired armings it reads are
  those of every round stepped; so does a partition given up (a revocation), so that the
  round commits before the partition's next owner claims it.
- **Changes.** :func:`main_api.changes.follow` (``LISTEN`` and a half-second poll) queues the
  alert changes; they are applied to every state held at the next poll, at most
  ``poll_timeout`` later, with the highest arming already fired of each changed alert, in
  slices of :data:`CHANGE_SLICE` (one slice before a poll and one after it), each slice's
  rows stored in its own transaction, not by the next round: a burst (the ``once`` alerts a
  price move ended, coming back through the feed) costs a poll at most a slice, instead of
  one round storing thousands of rows while the firings behind it wait. A state's change
  number moves to a batch's last only with its last slice: a state stored between two slices
  applies the batch again after a restart, which changes nothing twice.
- **Outages.** Anything that fails (the database away, the bus, a fenced state) ends the
  loop; :meth:`EvaluatorService.run` leaves the group, waits (:class:`~streams.outage.Backoff`,
  told by :class:`~streams.outage.OutageLog`) and starts again from the stored states. The
  first claim or round stored after it ends the outage (:meth:`EvaluatorService.recovered`):
  one line says so, and the backoff starts again from its shortest pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from core.alerts import AlertFired, AlertSpec
from main_api.alerts.evaluator import AlertEvaluator
from main_api.alerts.processing import (
    EVALUATOR_GROUP,
    TOPICS,
    Evaluated,
    PartitionState,
    apply_to,
    evaluate,
)
from main_api.alerts.relay import FiredRelay
from main_api.alerts.states import (
    Saved,
    claim,
    fired_armings,
    forget_other_buses,
    last_change,
    save,
)
from main_api.changes import MAX_CHANGES, AlertChanges, AlertGone, follow
from main_api.store import MainStore, record_firings
from streams.bus import Bus, Offsets, Record, Start, Subscription, TopicPartition
from streams.outage import Backoff, OutageLog
from streams.processor import Batch, Durability, Outcome, Processor, Round
from telemetry.metrics import ALERTS_FIRED

log = logging.getLogger(__name__)

Changes = tuple[list[AlertSpec | AlertGone], int]
Covered = dict[tuple[str, int], int]
"""The next offset of each partition whose rounds are stored."""


CHANGE_SLICE: Final = 500
"""The most alert changes applied at a time (see the module text, "Changes")."""

DEFAULT_RECORDS: Final = 500
MAX_RECORDS: Final = 10_000
"""The most records a round takes (``EvaluatorSettings.max_records``), and the default."""


@dataclass(frozen=True, slots=True)
class EvaluatorSettings:
    """One evaluator instance: its consumer group, where a group without commits starts,
    the round size, and whether to drop the group's states of other buses at start (``mdp
    up``, whose in-process bus is new each time)."""

    group: str = EVALUATOR_GROUP
    start: Start = "earliest"
    max_records: int = DEFAULT_RECORDS
    poll_timeout: float = 0.1
    forget_other_buses: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_records <= MAX_RECORDS:
            raise ValueError(f"max_records must be 1 to {MAX_RECORDS}")
        if not 0 < self.poll_timeout <= 1:
            raise ValueError("poll_timeout must be above 0 and at most 1 s")


TIMINGS_KEPT: Final = 100_000


class RoundTiming(NamedTuple):
    """One stored round's stages: the pure step, taking the deltas (encoding the changed
    rows) and the transaction (rows, offsets, firings); in nanoseconds. ``rows``: the rows
    it stored."""

    step_ns: int
    delta_ns: int
    commit_ns: int
    rows: int


@dataclass(slots=True)
class EvaluatorStats:
    rounds: int = 0
    fired: int = 0
    """Firings the evaluators handed back (repeats included)."""
    recorded: int = 0
    """Firings new to the database."""
    replayed: int = 0
    """Records skipped as already covered by a stored state."""
    undecodable: int = 0
    claims: int = 0
    restarts: int = 0
    changes: int = 0
    timings: deque[RoundTiming] = field(default_factory=lambda: deque(maxlen=TIMINGS_KEPT))
    """The last rounds' stages, for benchmarks and diagnosis."""


class Evaluating(Durability[Evaluated]):
    """The evaluator's durability hook and its partitions' states (see the module text)."""

    def __init__(self, service: EvaluatorService, bus: Bus) -> None:
        self.service = service
        self.store = service.store
        self.owner = f"{service.settings.group}@{bus.cluster_id}"
        self.partitions = {topic: bus.topic(topic).partitions for topic in TOPICS}
        self.states: dict[tuple[str, int], PartitionState] = {}
        self.step_ns = 0
        """How long the last round's pure step took."""
        self._storing: asyncio.Task[Covered] | None = None
        """The last round's transaction while it is in flight (:meth:`behind`)."""
        self._stored: Covered = {}
        """The offsets of rounds stored and not yet handed to the loop to commit."""
        self._slices: deque[tuple[list[AlertSpec | AlertGone], int, bool]] = deque()
        """Alert changes taken from the queue and not yet applied: a slice, its batch's last
        change number, and whether it is the batch's last slice."""

    def step(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[Evaluated]:
        began = time.perf_counter_ns()
        outcome = evaluate(self.states, batch)
        self.step_ns = time.perf_counter_ns() - began
        return outcome

    # -- ownership and changes ----------------------------------------------------------------

    async def own(self, assigned: Iterable[tuple[str, int]]) -> None:
        """Hold a state for exactly the ``assigned`` partitions; apply the queued changes."""
        wanted = {(topic, partition) for topic, partition in assigned if topic in TOPICS}
        queue = self.service.queue
        slices = self._slices
        while not queue.empty():
            batch, last = queue.get_nowait()
            for start in range(0, max(len(batch), 1), CHANGE_SLICE):
                end = start + CHANGE_SLICE
                slices.append((batch[start:end], last, end >= len(batch)))
        gone = [key for key in self.states if key not in wanted]
        if slices or gone or not wanted <= self.states.keys():
            # a claim or a change reads what the rounds stored; a partition given up is
            # given up with its round committed, before its next owner claims it (fenced
            # otherwise: the round rolled back and this loop started again)
            await self.settle()
        for key in gone:
            del self.states[key]
            log.info("alerts: %s[%d] handed over", *key)
        new = sorted(wanted - self.states.keys())
        if new:
            await self._claim(new)
        if slices:  # one slice, its rows stored with it (not left to the next round)
            await self._apply(self.states.values(), *slices.popleft(), store=True)

    async def _claim(self, keys: list[tuple[str, int]]) -> None:
        now = self.service.clock()
        claimed = []
        async with self.store.transaction() as conn:
            for topic, partition in keys:
                stored = await claim(conn, self.owner, topic, partition, now)
                evaluator = (
                    AlertEvaluator.from_rows(stored.alerts, stored.streams)
                    if stored.snapshot is None
                    else AlertEvaluator.from_snapshot(stored.snapshot)
                )
                claimed.append(PartitionState(topic, partition, evaluator, stored.next_offset,
                                              stored.change_seq, stored.epoch))  # fmt: skip
        self.service.stats.claims += len(claimed)
        self.service.recovered()
        # up to the last change: each batch applied to the states that have not seen it
        seq = min(state.change_seq for state in claimed)
        changes = AlertChanges(self.store)
        while True:
            batch, last = await changes.changes_after(seq, MAX_CHANGES)
            if not batch:
                break
            await self._apply(claimed, batch, last, True)
            seq = last
        # what the catch-up changed (every alert, for a partition new to the group) is stored
        # now, before the partition's first round, so that the rounds store only their own
        saved = [self._saved(state) for state in claimed]
        if any(part.delta for part in saved):
            async with self.store.transaction() as conn:
                await save(conn, self.owner, saved, self.service.clock())
        for state in claimed:
            self.states[state.key] = state
            log.info("alerts: %s[%d] claimed at offset %d (epoch %d, change %d)",
                     state.topic, state.partition, state.next_offset, state.epoch,
                     state.change_seq)  # fmt: skip

    async def _apply(
        self,
        states: Iterable[PartitionState],
        batch: list[AlertSpec | AlertGone],
        last: int,
        whole: bool,
        store: bool = False,
    ) -> None:
        """Apply one batch of changes (numbered up to ``last``), or a slice of it, to the
        states before it; the states are at ``last`` once the batch is ``whole`` (its last
        slice applied). A batch read before a state was brought further is not applied to it:
        the feed gives each alert's latest change, so a later read has it already. ``store``:
        the rows it changed are stored in the same transaction (no round is in flight: the
        caller settled), with each state's offset and change number as they are."""
        behind = [state for state in states if state.change_seq < last]
        if not behind:
            return
        specs = [(c.account, c.alert_id) for c in batch if isinstance(c, AlertSpec)]
        async with self.store.transaction() as conn:
            fired = await fired_armings(conn, specs)
            for state in behind:
                apply_to(state, batch, self.partitions[state.topic], fired)
                if whole:
                    state.change_seq = last
            saved = [self._saved(state) for state in behind] if store else []
            if any(part.delta for part in saved):
                await save(conn, self.owner, saved, self.service.clock())
        self.service.stats.changes += len(batch)

    @property
    def applying(self) -> bool:
        """Whether alert changes taken from the queue wait to be applied (slices left)."""
        return bool(self._slices)

    @staticmethod
    def _saved(state: PartitionState) -> Saved:
        return Saved(state.topic, state.partition, state.epoch, state.next_offset,
                     state.change_seq, state.evaluator.delta())  # fmt: skip

    # -- the hook -------------------------------------------------------------------------------

    def fresh(self, records: list[Record]) -> list[Record]:
        states = self.states
        kept = [r for r in records if r.offset >= states[(r.topic, r.partition)].next_offset]
        self.service.stats.replayed += len(records) - len(kept)
        return kept

    async def behind(self, round: Round[Evaluated]) -> Offsets:
        """Wait for the last round's transaction, then start this one's (its deltas taken
        now, before the next step moves the states on) and return what the stored rounds
        cover: a round's transaction overlaps the next poll and step, and its offsets are
        committed on the bus only after it (see the module text)."""
        await self.settle()
        effects = round.outcome.effects
        stats = self.service.stats
        stats.rounds += 1
        stats.undecodable += effects.undecodable
        covered, self._stored = self._stored, {}
        if not effects.moved:
            return covered | round.offsets
        began = time.perf_counter_ns()
        saved = [self._saved(self.states[key]) for key in effects.moved]
        delta_ns = time.perf_counter_ns() - began
        self._storing = asyncio.create_task(
            self._store(saved, effects.fired, round.offsets, delta_ns), name="alerts round"
        )
        return covered

    async def settle(self) -> None:
        """Wait for the round in flight: its offsets are kept for the loop to commit; its
        failure is raised here (the loop ends and starts again from the stored states)."""
        storing, self._storing = self._storing, None
        if storing is not None:
            self._stored |= await storing

    async def abandon(self) -> None:
        """The loop ended: a round still in flight is cancelled (rolled back)."""
        storing, self._storing = self._storing, None
        if storing is not None:
            storing.cancel()
            await asyncio.wait([storing])  # a cancel of the caller still goes through
            if not storing.cancelled():
                storing.exception()  # retrieved: the loop's own failure is the one told

    async def finish(self, drained: bool) -> Offsets:
        await self.settle()
        covered, self._stored = self._stored, {}
        return covered

    async def _store(
        self, saved: list[Saved], fired: list[AlertFired], offsets: Covered, delta_ns: int
    ) -> Covered:
        """One round's transaction: its rows, offsets and firings; then, committed, its new
        firings handed to the relay (:meth:`FiredRelay.hand`: published from memory)."""
        step_ns = self.step_ns
        service = self.service
        stats = service.stats
        began = time.perf_counter_ns()
        now = service.clock()
        async with self.store.transaction() as conn:
            await save(conn, self.owner, saved, now)
            recorded = await record_firings(conn, fired, now)
        stats.timings.append(
            RoundTiming(
                step_ns, delta_ns, time.perf_counter_ns() - began,
                sum(len(part.delta.alerts) + len(part.delta.streams) for part in saved),
            )
        )  # fmt: skip
        service.recovered()
        stats.fired += len(fired)
        stats.recorded += len(recorded.new)
        ALERTS_FIRED.inc(len(recorded.new))  # a replayed round's firings are recorded once
        service.relay.hand(recorded)  # queued: the relay's task publishes, we do not wait
        return offsets


class _Owning(Subscription):
    """The subscription as the loop sees it: before and after each poll, the hook takes the
    partitions now assigned (and those of the records polled) and applies queued changes."""

    def __init__(self, subscription: Subscription, hook: Evaluating) -> None:
        self._subscription = subscription
        self._hook = hook
        self.group = subscription.group
        self.topics = subscription.topics

    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        subscription = self._subscription
        await self._hook.own(subscription.assignment())
        records = await subscription.poll(max_records, timeout)
        polled = {(r.topic, r.partition) for r in records}
        await self._hook.own(polled | set(subscription.assignment()))
        return records

    async def commit(self, offsets: Offsets) -> None:
        await self._subscription.commit(offsets)

    async def committed(self) -> dict[TopicPartition, int]:
        return await self._subscription.committed()

    def assignment(self) -> frozenset[TopicPartition]:
        return self._subscription.assignment()

    async def close(self) -> None:
        await self._subscription.close()


@dataclass(slots=True)
class EvaluatorService:
    """The alert evaluator on ``bus`` with the main API's ``store`` (``database_url`` for the
    change feed's ``LISTEN``) until ``stop``: the processor loop, the change feed and the
    relay (see the module text)."""

    store: MainStore
    bus: Bus
    database_url: str = field(repr=False)
    settings: EvaluatorSettings = field(default_factory=EvaluatorSettings)
    clock: Callable[[], int] = time.time_ns
    stats: EvaluatorStats = field(default_factory=EvaluatorStats)
    backoff: Backoff = field(default_factory=Backoff)
    outage: OutageLog = field(
        default_factory=lambda: OutageLog(
            "alert evaluator: database or bus", 30.0, "restarting with backoff"
        )
    )
    queue: asyncio.Queue[Changes] = field(default_factory=lambda: asyncio.Queue(64))
    relay: FiredRelay = field(init=False)
    hook: Evaluating | None = None
    """The current loop's hook (None between loops)."""

    def __post_init__(self) -> None:
        self.relay = FiredRelay(self.store, self.bus)

    async def run(self, stop: asyncio.Event) -> None:
        outage = self.outage
        # the change feed is followed from before any state is claimed: a state claimed later
        # catches up to at least there by itself
        after = None
        while after is None and not stop.is_set():
            try:
                async with self.store.transaction() as conn:
                    after = await last_change(conn)
                self.recovered()
            except Exception as exc:
                if line := outage.failed(time.monotonic(), f"{type(exc).__name__}: {exc}"):
                    log.warning("%s", line)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.backoff.next_delay())
        if after is None:
            return
        tasks = [
            asyncio.create_task(self.relay.run(stop), name="alerts.events relay"),
            asyncio.create_task(self._follow(stop, after), name="alert changes"),
        ]
        try:
            while not stop.is_set():
                try:
                    await self._consume(stop)
                except Exception as exc:
                    self.stats.restarts += 1
                    if line := outage.failed(time.monotonic(), f"{type(exc).__name__}: {exc}"):
                        log.warning("%s", line, exc_info=outage.failures == 1)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.backoff.next_delay())
                    continue
                self.backoff.reset()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def recovered(self) -> None:
        """The database and the bus did their part (a round or a claim stored): an outage
        before it is over; it is told, and the next one backs off from the shortest pause."""
        if self.outage.ongoing:
            if line := self.outage.recovered(time.monotonic()):
                log.warning("%s", line)
            self.backoff.reset()

    async def _consume(self, stop: asyncio.Event) -> None:
        settings = self.settings
        bus = self.bus
        if settings.forget_other_buses:
            async with self.store.transaction() as conn:
                await forget_other_buses(conn, settings.group, f"{settings.group}@{bus.cluster_id}")
        self.hook = hook = Evaluating(self, bus)
        processor = Processor(
            bus, settings.group, TOPICS, hook.step, hook, start=settings.start,
            max_records=settings.max_records, poll_timeout=settings.poll_timeout,
            clock=self.clock,
        )  # fmt: skip
        stopping = asyncio.create_task(stop.wait())
        stopping.add_done_callback(lambda _: processor.stop())
        try:
            async with bus.subscribe(settings.group, list(TOPICS), start=settings.start) as sub:
                await processor.consume(_Owning(sub, hook))
        finally:
            stopping.cancel()
            await hook.abandon()
            self.hook = None

    async def _follow(self, stop: asyncio.Event, after: int) -> None:
        """Queue every alert change after ``after`` (:func:`follow` rides out the database's
        outages; anything else is told and the feed taken up again from where it was)."""
        changes = AlertChanges(self.store)
        while not stop.is_set():
            try:
                async for batch, last in follow(changes, self.database_url, after, stop):
                    await self.queue.put((batch, last))
                    after = last
            except Exception:
                log.exception("alert changes: following again in a second")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

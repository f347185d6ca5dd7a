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
- **Rebalances** (on Kafka). The subscription's rebalance hook (:class:`Handover`, on
  :class:`streams.kafka.bus.Rebalance`) settles a revoked partition inside the rebalance,
  before any other member is given it (:meth:`Evaluating.revoked`): the round in flight
  commits there, what the stored rounds cover of it is committed on the bus, and a round
  stepped whose transaction has not started yet forgets what it did to it (its state is
  dropped unstored, so that round stores nothing of it, and claimed again from what is
  stored if the partition comes back). The other revoked states are parked until the
  rebalance's assignment (:meth:`Evaluating.reassigned`): kept if the partition is this
  member's again (an eager rebalance revokes everything), dropped if not. Records of a
  partition without a state are dropped (:meth:`Evaluating.fresh`; read again from the
  committed offset if it comes back), and no offset of one is committed. What the hook
  assigned is what :meth:`Evaluating.own` holds; without a hook (the in-process bus) it
  reads the subscription's assignment and, at its next poll, gives up a partition gone once
  the round in flight has committed. One lock keeps the hook, :meth:`Evaluating.own` and
  :meth:`Evaluating.behind` apart (the hook runs in the consumer's coordinator task, at any
  point the loop awaits); :meth:`Evaluating.own` reads the hook's assignment under it, and
  never claims a parked partition. The hook waits for the lock and the round in flight, and
  then for the bus's commit, each at most :meth:`Handover.limit_for` (the rebalance would
  throw the member out otherwise): past it the loop is failed (it starts again from the
  stored states), the revoked states are dropped unparked, the round left to
  :meth:`Evaluating.abandon`.
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
from collections.abc import Awaitable, Callable, Collection, Iterable
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
from streams.bus import (
    Bus,
    BusError,
    Offsets,
    Record,
    Start,
    Subscription,
    TopicPartition,
    partition_names,
)
from streams.kafka.bus import KafkaBus, Rebalance
from streams.kafka.settings import KafkaSettings
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
    it stored. Then when (``time.perf_counter_ns``) its poll returned, its step began and
    ended, its transaction began (after the round before it had committed) and committed
    (its new firings handed to the relay then), and the ``fire_id`` of those firings: a
    benchmark follows a firing through them."""

    step_ns: int
    delta_ns: int
    commit_ns: int
    rows: int
    polled_at: int = 0
    step_at: int = 0
    stepped_at: int = 0
    began_at: int = 0
    committed_at: int = 0
    fired: tuple[str, ...] = ()


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
        self.polled_at = 0
        self.step_at = 0
        """When (``perf_counter_ns``) the last poll returned and the last step began."""
        self._storing: asyncio.Task[Covered] | None = None
        """The last round's transaction while it is in flight (:meth:`behind`)."""
        self._stored: Covered = {}
        """The offsets of rounds stored and not yet handed to the loop to commit."""
        self._slices: deque[tuple[list[AlertSpec | AlertGone], int, bool]] = deque()
        """Alert changes taken from the queue and not yet applied: a slice, its batch's last
        change number, and whether it is the batch's last slice."""
        self._lock = asyncio.Lock()
        """Held by what stores or drops states (:meth:`own`, :meth:`behind`, the rebalance
        hook): a revocation waits for a claim or a change in hand, and the reverse."""
        self._stepped: Evaluated | None = None
        """The effects of a round stepped whose transaction has not started (:meth:`behind`)."""
        self.assigned: frozenset[tuple[str, int]] | None = None
        """With a rebalance hook (:class:`Handover`), the partitions its last rebalance left
        this member; ``None`` without one (then the subscription's assignment is read)."""
        self._parked: dict[tuple[str, int], PartitionState] = {}
        """States of partitions revoked, their rounds stored, until the rebalance's
        assignment says whether they stay (kept, not claimed again) or go (dropped)."""
        self._failure: BaseException | None = None
        """The round a revocation settled failed: raised to the loop at its next settle."""

    def step(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[Evaluated]:
        self.step_at = began = time.perf_counter_ns()
        outcome = evaluate(self.states, batch)
        self.step_ns = time.perf_counter_ns() - began
        self._stepped = outcome.effects
        return outcome

    # -- ownership and changes ----------------------------------------------------------------

    async def own(self, assigned: Iterable[tuple[str, int]]) -> None:
        """Hold a state for exactly the ``assigned`` partitions (with a rebalance hook, its
        :attr:`assigned`, read under the lock: a revocation that held it first has taken its
        partitions out by then); apply the queued changes."""
        queue = self.service.queue
        slices = self._slices
        while not queue.empty():
            batch, last = queue.get_nowait()
            for start in range(0, max(len(batch), 1), CHANGE_SLICE):
                end = start + CHANGE_SLICE
                slices.append((batch[start:end], last, end >= len(batch)))
        async with self._lock:
            held = assigned if self.assigned is None else self.assigned
            wanted = {(topic, partition) for topic, partition in held if topic in TOPICS}
            gone = [key for key in self.states if key not in wanted]
            # a parked state is the rebalance's to keep or drop: never claimed again here
            new = sorted(wanted - self.states.keys() - self._parked.keys())
            if slices or gone or new:
                # a claim or a change reads what the rounds stored; a partition given up is
                # given up with its round committed, before its next owner claims it (fenced
                # otherwise: the round rolled back and this loop started again)
                await self.settle()
            for key in gone:
                del self.states[key]
                log.info("alerts: %s[%d] handed over", *key)
            if new:
                await self._claim(new)
            # one slice, its rows stored with it (not left to the next round); none while a
            # rebalance holds states parked, which would miss it
            if slices and not self._parked:
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
        """The records past their state's offset; a partition without a state (revoked
        between the poll and now) is not this member's: its records are dropped, read
        again from the committed offset if it comes back."""
        states = self.states
        kept = [
            r
            for r in records
            if (state := states.get((r.topic, r.partition))) is not None
            and r.offset >= state.next_offset
        ]
        self.service.stats.replayed += len(records) - len(kept)
        return kept

    async def behind(self, round: Round[Evaluated]) -> Offsets:
        """Wait for the last round's transaction, then start this one's (its deltas taken
        now, before the next step moves the states on) and return what the stored rounds
        cover: a round's transaction overlaps the next poll and step, and its offsets are
        committed on the bus only after it (see the module text)."""
        async with self._lock:
            await self.settle()
            self._stepped = None
            effects = round.outcome.effects
            stats = self.service.stats
            stats.rounds += 1
            stats.undecodable += effects.undecodable
            covered, self._stored = self._stored, {}
            states = self.states  # a partition revoked since the poll: not committed here
            offsets = {key: offset for key, offset in round.offsets.items() if key in states}
            if not effects.moved:
                return covered | offsets
            began = time.perf_counter_ns()
            saved = [self._saved(states[key]) for key in effects.moved]
            delta_ns = time.perf_counter_ns() - began
            timing = RoundTiming(
                self.step_ns, delta_ns, 0, 0, self.polled_at, self.step_at,
                self.step_at + self.step_ns,
            )  # fmt: skip
            self._storing = asyncio.create_task(
                self._store(saved, effects.fired, offsets, timing), name="alerts round"
            )
            return covered

    async def settle(self) -> None:
        """Wait for the round in flight: its offsets are kept for the loop to commit; its
        failure is raised here (the loop ends and starts again from the stored states). A
        wait cancelled (a time limit) leaves the round in flight, for :meth:`abandon`."""
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure
        storing = self._storing
        if storing is not None:
            await asyncio.wait([storing])
            self._storing = None
            self._stored |= storing.result()

    # -- rebalances (:class:`Handover`, from the consumer's coordinator task) -------------------

    async def revoked(
        self,
        partitions: Collection[tuple[str, int]],
        commit: Callable[[Offsets], Awaitable[None]],
        limit: float | None = None,
    ) -> None:
        """A rebalance takes ``partitions`` (all of them, on an eager rebalance), before
        any other member may have them: the round in flight commits here, the offsets the
        stored rounds cover of them are committed (``commit``), and a round stepped whose
        transaction has not started forgets what it did to them (their states are dropped:
        claimed again from what is stored if they come back). The other revoked states are
        parked until the assignment. A failure is kept for the loop (raised at its next
        settle: it starts again from the stored states). ``limit``: the seconds the lock and
        the round in flight are waited for (the rebalance's own time is short); past it the
        loop is failed so, the revoked states are dropped unstored and the round is left in
        flight (:meth:`abandon` cancels it; the next owner's claim waits for its rows)."""
        revoked = {key for key in partitions if key[0] in TOPICS}
        if self.assigned is not None:
            self.assigned -= revoked  # at once: :meth:`own` reads it under the lock
        locked = False
        bound = asyncio.timeout(limit)
        try:
            try:
                async with bound:
                    await self._lock.acquire()
                    locked = True
                    await self.settle()
            except Exception as exc:  # the loop is told; the rebalance goes on
                failure: Exception = exc
                if bound.expired():
                    failure = TimeoutError(f"a revocation waited {limit:g} s for the database")
                    log.warning("alerts: %s not settled within %g s (the database stuck?): "
                                "given up unstored, the loop starts again from the stored "
                                "states", partition_names(revoked) or "nothing", limit)  # fmt: skip
                    if locked:  # ours to drop (not parked: nothing is kept of them)
                        for key in revoked:
                            self.states.pop(key, None)
                if self._failure is None:
                    self._failure = failure
                return
            self._revoke(revoked)
            covered = {key: self._stored.pop(key) for key in revoked & self._stored.keys()}
            if covered:
                await commit(covered)
        finally:
            if locked:
                self._lock.release()

    def _revoke(self, revoked: set[tuple[str, int]]) -> None:
        """The revoked states, their rounds stored: dropped if a round stepped moved them
        (its transaction not started), parked otherwise (held under the lock)."""
        stepped, self._stepped = self._stepped, None
        unstored = revoked & stepped.moved.keys() if stepped is not None else set()
        if stepped is not None and unstored:
            stepped.drop(unstored)
        for key in revoked & self.states.keys():
            state = self.states.pop(key)
            if key in unstored:
                log.info("alerts: %s[%d] revoked, a round of it abandoned", *key)
            else:
                self._parked[key] = state

    async def reassigned(self, partitions: Collection[tuple[str, int]]) -> None:
        """A rebalance gave this member ``partitions`` (all it has now): a parked state among
        them is kept, the others are handed over; :meth:`own` claims the new ones."""
        assigned = frozenset(key for key in partitions if key[0] in TOPICS)
        async with self._lock:
            self.assigned = assigned
            parked, self._parked = self._parked, {}
            for key, state in parked.items():
                if key in assigned:
                    self.states[key] = state
                else:
                    log.info("alerts: %s[%d] handed over", *key)

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
        self, saved: list[Saved], fired: list[AlertFired], offsets: Covered, timing: RoundTiming
    ) -> Covered:
        """One round's transaction: its rows, offsets and firings; then, committed, its new
        firings handed to the relay (:meth:`FiredRelay.hand`: published from memory).
        ``timing``: the round's stages so far, completed here."""
        service = self.service
        stats = service.stats
        began = time.perf_counter_ns()
        now = service.clock()
        async with self.store.transaction() as conn:
            await save(conn, self.owner, saved, now)
            recorded = await record_firings(conn, fired, now)
        committed = time.perf_counter_ns()
        stats.timings.append(
            timing._replace(
                commit_ns=committed - began,
                rows=sum(len(part.delta.alerts) + len(part.delta.streams) for part in saved),
                began_at=began, committed_at=committed,
                fired=tuple(event.fire_id for _, event in recorded.new),
            )
        )  # fmt: skip
        service.recovered()
        stats.fired += len(fired)
        stats.recorded += len(recorded.new)
        ALERTS_FIRED.inc(len(recorded.new))  # a replayed round's firings are recorded once
        service.relay.hand(recorded)  # queued: the relay's task publishes, we do not wait
        return offsets


class Handover(Rebalance):
    """The evaluator's partitions as a Kafka subscription's rebalances move them: a revoked
    partition's round settles inside the rebalance, before another member is given it
    (:meth:`Evaluating.revoked`), not at the member's next poll, when the next owner may
    have claimed it already (its round fenced then: rolled back, and the loop started
    again). ``limit``: the seconds it waits for the database, and then for the commit on the
    bus (:meth:`limit_for`): a hook still waiting when the rebalance times out has its member
    thrown out of the group."""

    def __init__(self, hook: Evaluating, limit: float | None = None) -> None:
        self.hook = hook
        self.limit = limit
        self.subscription: Subscription | None = None

    @staticmethod
    def limit_for(settings: KafkaSettings) -> float:
        """The request timeout, at most a third of the session timeout (aiokafka's rebalance
        timeout): the two waits together stay within it."""
        return min(settings.request_timeout, settings.session_timeout / 3)

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        await self.hook.revoked(partitions, self._commit, self.limit)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        await self.hook.reassigned(partitions)

    async def _commit(self, offsets: Offsets) -> None:
        """Commit what the stored rounds cover of revoked partitions: only told when it
        fails (the next owner starts from the stored offsets, not from these)."""
        if self.subscription is None:
            return
        try:
            async with asyncio.timeout(self.limit):
                await self.subscription.commit(offsets)
        except (BusError, TimeoutError) as exc:
            log.warning("alerts: offsets stored but not committed on the bus: %s",
                        str(exc) or f"no answer within {self.limit:g} s")  # fmt: skip


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
        hook = self._hook
        await hook.own(subscription.assignment() if hook.assigned is None else hook.assigned)
        records = await subscription.poll(max_records, timeout)
        hook.polled_at = time.perf_counter_ns()
        if hook.assigned is not None:  # what the rebalance hook says is this member's
            await hook.own(hook.assigned)
        else:
            polled = {(r.topic, r.partition) for r in records}
            await hook.own(polled | set(subscription.assignment()))
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
            async with self._subscribe(hook) as sub:
                await processor.consume(_Owning(sub, hook))
        finally:
            stopping.cancel()
            await hook.abandon()
            self.hook = None

    def _subscribe(self, hook: Evaluating) -> Subscription:
        """The loop's subscription; on Kafka with :class:`Handover` as its rebalance hook."""
        settings = self.settings
        if not isinstance(self.bus, KafkaBus):
            return self.bus.subscribe(settings.group, list(TOPICS), start=settings.start)
        hook.assigned = frozenset()
        handover = Handover(hook, Handover.limit_for(self.bus.settings))
        sub = self.bus.subscribe(
            settings.group, list(TOPICS), start=settings.start, rebalance=handover
        )
        handover.subscription = sub
        return sub

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

"""The relay from the fired history to ``alerts.events`` (a transactional outbox).

The evaluator records its firings in ``main_api_fired`` in the transaction that stores its
state and offsets; the relay publishes the rows committed there, in ``seq`` order, and keeps
how far it got in ``main_api_relay``. Rows take their ``seq`` under the change feed's lock held
to their commit (:func:`main_api.store.record_firings_in`), so they commit in ``seq`` order and
a reader that saw ``n`` saw everything before it.

A round (:meth:`FiredRelay.publish_pending`) takes the position row ``FOR UPDATE SKIP
LOCKED`` (one relay at a time over every instance; another one busy: this one skips),
publishes up to ``batch`` rows and moves the position in the same transaction. A crash after
the publish and before the commit publishes those rows again: the same ``fire_id``, which
consumers drop. Nothing uncommitted is ever published.

**The fast path** (:meth:`FiredRelay.hand`). The evaluator of this process hands a round's
new firings to the relay from memory once the round's transaction has committed (never
before, so never a firing that was rolled back), and they are published at once, without
reading them back. The table stays the source of truth: the relay's rounds go on as above,
and a round passes over the rows handed out already (their ``seq`` are kept until the
position passes them), so that a firing the fast path published is not published again by
this process. A handed round whose rows directly follow the position (everything committed
before it is published: the ``after`` of :class:`~main_api.store.Recorded`) moves the
position past them in the relay's next transaction, without reading them. Another
instance's relay may still publish them again before that (the same ``fire_id``); a fast
publish that fails is left to the relay's rounds.

What the fast path holds is bounded (:attr:`FiredRelay.max_queued` waiting,
:attr:`FiredRelay.max_held` in all, the ``seq`` published and not yet passed included): a hand
past either, or after a failed publish, is refused, and so is every hand after it until the
position has passed it, so that no firing goes out before one recorded earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from core.alerts import AlertFired
from core.topic_codecs import ALERTS_EVENTS_CODEC
from core.topics import ALERTS_EVENTS
from main_api.errors import StoreUnavailableError
from main_api.store import MainStore, Recorded
from main_api.tables import fired_of
from streams.bus import Bus, BusError
from streams.outage import Backoff
from streams.rounds import RoundFailures

log = logging.getLogger(__name__)

RELAY_NAME: Final = "alerts.events"
POLL_S: Final = 0.5
"""How often the relay looks anyway (another instance's firings; a wake-up missed)."""


@dataclass(slots=True)
class FiredRelay:
    """Publishes committed firings on ``alerts.events`` (see the module text)."""

    store: MainStore
    bus: Bus
    name: str = RELAY_NAME
    batch: int = 500
    published: int = 0
    handed_out: int = 0
    """Firings published by the fast path (:meth:`hand`)."""
    max_queued: int = 50_000
    """The most firings handed and not yet published; a round past it is left to the rounds."""
    max_held: int = 200_000
    """The most firings held in memory: handed and not yet published, and published by the
    fast path and not yet passed by the position (:attr:`handed`). A round past it is left to
    the rounds, and so is every round after it until the position has passed it."""
    backoff: Backoff = field(default_factory=Backoff)
    handed: set[int] = field(default_factory=set)
    """The ``seq`` of the rows the fast path published that the position has not passed."""
    _handed_heap: list[int] = field(default_factory=list)
    """:attr:`handed` as a heap: its lowest forgotten in O(log n) as the position passes."""
    _queued: deque[Recorded] = field(default_factory=deque)
    """The rounds handed over and not yet published, oldest (lowest ``seq``) first."""
    _queued_seqs: set[int] = field(default_factory=set)
    _runs: deque[tuple[int, int]] = field(default_factory=deque)
    """Each handed round's ``(after, last seq)``, oldest first, until the position passes."""
    _table_to: int = 0
    """Hands are refused until the position reaches this ``seq`` (a round refused or a fast
    publish failed: what follows it goes by the table too, so firings keep their order)."""
    _relayed_to: int = 0
    """The last ``seq`` a round of this relay read and published (or passed over)."""
    _due: bool = False
    """A round is wanted now (a hand refused or failed)."""
    _nudge: asyncio.Event = field(default_factory=asyncio.Event)

    def hand(self, recorded: Recorded) -> bool:
        """The fast path: the new firings of a round whose transaction has committed (the
        caller's part: never before), published at once by the relay's task from memory.
        The caller never waits for the bus. False when too many are waiting already: those
        are left to the relay's rounds, which read them from the table."""
        if not recorded.new:
            return True
        count = len(recorded.new)
        if (
            self._table_to
            or len(self._queued_seqs) + count > self.max_queued
            or len(self._queued_seqs) + len(self.handed) + count > self.max_held
        ):
            self._table_to = max(self._table_to, recorded.new[-1][0])
            self.look()
            return False
        self._queued.append(recorded)
        self._queued_seqs.update(seq for seq, _ in recorded.new)
        self._nudge.set()
        return True

    def look(self) -> None:
        """Have a round read the table now (not only at the next poll)."""
        self._due = True
        self._nudge.set()

    async def publish_handed(self) -> int:
        """Publish the rounds handed over, oldest first (less what a round of this relay
        published meanwhile); how many firings. Should the bus fail, every round waiting is
        left to the relay's rounds (the position has not passed them) and the error raised."""
        published = 0
        while self._queued:
            recorded = self._queued[0]
            seqs = [seq for seq, _ in recorded.new]
            events = [event for seq, event in recorded.new if seq > self._relayed_to]
            try:
                if events:
                    await self._publish(events)
            except BaseException:
                self._table_to = max(self._table_to, self._queued[-1].new[-1][0])
                self._queued.clear()
                self._queued_seqs.clear()
                self._due = True
                raise
            self._queued.popleft()
            self._queued_seqs.difference_update(seqs)
            self.handed.update(seqs)
            for seq in seqs:
                heapq.heappush(self._handed_heap, seq)
            self._runs.append((recorded.after, seqs[-1]))
            published += len(events)
        self.handed_out += published
        return published

    async def _publish(self, events: Sequence[AlertFired]) -> None:
        codec = ALERTS_EVENTS_CODEC
        await self.bus.topic(ALERTS_EVENTS).publish_many([codec.record(e) for e in events])

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop``: the rounds handed over at once, a round of the table every
        :data:`POLL_S` (and when one is wanted); a failure (the database or the bus away, or
        anything else) is told and tried again with backoff
        (:class:`~streams.rounds.RoundFailures`)."""
        failures = RoundFailures(
            "alerts.events relay: database or bus", log,
            expected=(StoreUnavailableError, BusError), backoff=self.backoff,
        )  # fmt: skip
        due = 0.0
        while not stop.is_set():
            self._nudge.clear()
            try:
                await self.publish_handed()
                if self._due or time.monotonic() >= due:
                    self._due = False
                    due = time.monotonic() + POLL_S
                    while await self.publish_pending() == self.batch:
                        await self.publish_handed()
            except Exception as exc:  # the database, the bus, or a bug: try again later
                await _pause(stop, failures.failed(exc))
                continue
            failures.succeeded()
            if self._queued or self._due:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - time.monotonic())):
                    await self._nudge.wait()

    async def publish_pending(self) -> int:
        """Publish the next committed firings (at most ``batch`` rows read; those the fast
        path published are passed over, and those it holds, and what follows them, wait for
        it); how many rows it read, 1 when only handed runs moved the position, 0 when it did
        not move."""
        async with self.store.transaction() as conn:
            await conn.execute(
                "INSERT INTO main_api_relay (name, seq) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (self.name,),
            )
            cursor = await conn.execute(
                "SELECT seq FROM main_api_relay WHERE name = %s FOR UPDATE SKIP LOCKED",
                (self.name,),
            )
            row = await cursor.fetchone()
            if row is None:  # another relay is at it; what it passed is done here too
                cursor = await conn.execute(
                    "SELECT seq FROM main_api_relay WHERE name = %s", (self.name,)
                )
                if (row := await cursor.fetchone()) is not None:
                    self._passed(row["seq"])
                return 0
            stored = row["seq"]
            start = self._passed(stored)
            cursor = await conn.execute(
                "SELECT * FROM main_api_fired WHERE seq > %s ORDER BY seq LIMIT %s",
                (start, self.batch),
            )
            rows = await cursor.fetchall()
            read = len(rows)
            if self._queued:  # the fast path publishes these: what follows waits
                held = min(seq for seq, _ in self._queued[0].new)
                rows = [row for row in rows if row["seq"] < held]
            events = [fired_of(row) for row in rows if row["seq"] not in self.handed]
            if events:
                await self._publish(events)
            if rows:  # a round handed meanwhile publishes only what follows these
                self._relayed_to = max(self._relayed_to, rows[-1]["seq"])
            position = self._passed(rows[-1]["seq"] if rows else start)
            if position == stored:
                return 0
            await conn.execute(
                "UPDATE main_api_relay SET seq = %s WHERE name = %s", (position, self.name)
            )
        self.published += len(events)
        return read or 1

    def _passed(self, position: int) -> int:
        """The position once it has passed the handed runs that follow it (every row of a
        run is handed out), the handed ``seq`` below it forgotten."""
        runs = self._runs
        while runs and runs[0][1] <= position:
            runs.popleft()
        while runs and runs[0][0] <= position:
            position = runs.popleft()[1]
        heap, handed = self._handed_heap, self.handed
        while heap and heap[0] <= position:
            handed.discard(heapq.heappop(heap))
        if self._table_to <= position:
            self._table_to = 0
        return position


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

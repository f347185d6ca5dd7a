"""What every bus consumer of the process shows an operator: its lag per partition (the
``mdp_consumer_lag_records`` metric) and whether it is keeping in touch with the bus (the
``bus`` and ``lag`` checks of ``/readyz``).

A :class:`ConsumerWatch` is a plain object fed with the time: the processor loop
(:class:`streams.processor.Processor`) tells it each round, and at most once a second it
reads the subscription's :meth:`~streams.bus.Subscription.progress` (positions and the ends
the adapter last heard: no broker round trip), so the cost is bounded whatever the record
rate. Prometheus' scrape and ``/readyz`` read the watches from the admin server's thread;
a watch replaces its lag map whole, never mutates it in place.

What the ``bus`` check detects, from what the adapters can observe (a Kafka consumer cannot
ask the broker "are you there" through the bus interface):

- ``stalled``: the loop has not come round (a poll or a pause) for ``stale`` seconds: it is
  stuck in a call;
- ``unassigned``: the member has had no partition for ``stale`` seconds (it has not joined
  its group: the broker or its group coordinator is away, or there are more members than
  partitions);
- ``unreachable``: the member has been polling, but no fetch answer for any of its
  partitions has come for ``stale`` seconds (Kafka: the broker is away; the in-process bus
  always answers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from streams.bus import PartitionProgress, TopicPartition
from telemetry.metrics import CONSUMER_LAG

LOOK_EVERY: Final = 1.0
"""Seconds between two reads of a subscription's progress."""
DEFAULT_STALE: Final = 30.0
"""Seconds without contact after which a consumer is not ready (``--ready-stale``)."""
DEFAULT_MAX_LAG: Final = 10_000
"""Records behind in one partition after which a consumer is not ready (``--ready-max-lag``)."""
Check = Callable[[], str | None]


@dataclass(slots=True)
class ConsumerWatch:
    """One consumer's contact with the bus; times are monotonic seconds, ``heard`` too (a
    wall-clock time from the adapter is turned into one when it is read)."""

    group: str
    started: float
    last_round: float = 0.0
    last_poll: float = 0.0
    unassigned_since: float | None = None
    heard: float | None = None
    lag: Mapping[TopicPartition, int] = field(default_factory=dict)
    next_look: float = 0.0

    def __post_init__(self) -> None:
        self.last_round = self.last_poll = self.started
        self.unassigned_since = self.started

    def due(self, now: float, polled: bool) -> bool:
        """Note a round (``polled``: it asked the bus); whether :meth:`look` is due."""
        self.last_round = now
        if polled:
            self.last_poll = now
        if now < self.next_look:
            return False
        self.next_look = now + LOOK_EVERY
        return True

    def look(
        self, now: float, now_ns: int, progress: Mapping[TopicPartition, PartitionProgress]
    ) -> None:
        """Take in the subscription's progress (``now_ns``: the wall clock, to place the
        adapter's ``heard_ns``)."""
        if not progress:
            if self.unassigned_since is None:
                self.unassigned_since = now
            self.lag = {}
            return
        if self.unassigned_since is not None:
            self.unassigned_since = None
            self.heard = now  # a new assignment counts as contact
        heard = [p.heard_ns for p in progress.values() if p.heard_ns is not None]
        if heard:
            seen = now - max(0, now_ns - max(heard)) / 1e9
            self.heard = seen if self.heard is None else max(self.heard, seen)
        self.lag = {tp: lag for tp, p in progress.items() if (lag := p.lag) is not None}

    def state(self, now: float, stale: float) -> str | None:
        """``None`` while in touch with the bus, else why not (see the module text)."""
        if now - self.last_round > stale:
            return "stalled"
        if self.unassigned_since is not None:
            return "unassigned" if now - self.unassigned_since > stale else None
        if self.heard is not None and self.last_poll - self.heard > stale:
            return "unreachable"
        return None

    def behind(self, max_lag: int) -> bool:
        """Some partition is more than ``max_lag`` records behind."""
        return any(lag > max_lag for lag in self.lag.values())


class Watches:
    """The watches of the running consumers of this process (a processor adds its own while
    it runs); read from any thread."""

    def __init__(self) -> None:
        self._watches: dict[int, ConsumerWatch] = {}
        self._lock = threading.Lock()

    def add(self, watch: ConsumerWatch) -> Callable[[], None]:
        """Watch ``watch``; returns the function that forgets it."""
        with self._lock:
            self._watches[id(watch)] = watch

        def forget() -> None:
            with self._lock:
                self._watches.pop(id(watch), None)

        return forget

    def __iter__(self) -> Iterator[ConsumerWatch]:
        with self._lock:
            return iter(list(self._watches.values()))

    def lag(self) -> Iterator[tuple[tuple[str, str, str], float]]:
        """The readings of ``mdp_consumer_lag_records``."""
        for watch in self:
            for tp, lag in watch.lag.items():
                yield (watch.group, tp.topic, str(tp.partition)), float(lag)

    def bus_check(self, clock: Callable[[], float], stale: float = DEFAULT_STALE) -> Check:
        """The ``bus`` check: ``starting`` before a consumer runs, else the first consumer's
        reason to be out of touch, ``None`` when all are in touch."""

        def check() -> str | None:
            watches = list(self)
            if not watches:
                return "starting"
            now = clock()
            return next((why for w in watches if (why := w.state(now, stale))), None)

        return check

    def lag_check(self, max_lag: int = DEFAULT_MAX_LAG) -> Check:
        """The ``lag`` check: ``lagging`` when a partition of a consumer is more than
        ``max_lag`` records behind."""
        return lambda: "lagging" if any(w.behind(max_lag) for w in self) else None


WATCHES: Final = Watches()
"""This process's consumers."""
CONSUMER_LAG.watch(WATCHES.lag)

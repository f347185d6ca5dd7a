"""Engine settings: one frozen object, passed in by whoever runs the engine."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from core.instruments import venue_of
from core.intervals import DEFAULT_INTERVALS, NS_PER_SECOND, Interval

_MS = 1_000_000


class EmptyPolicy(enum.StrEnum):
    """What an interval without trades becomes: no candle, or a flat one at the last close."""

    SKIP = "skip"
    FILL = "fill"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the candle engine buckets, closes, revises and emits.

    - ``lateness_ns``: a bucket closes once the instrument's event clock passes its end by this.
    - ``horizon_ns``: a tick older than the event clock minus this is rejected; younger late
      ticks revise their closed candle.
    - ``empty``: the rule for intervals without trades; ``empty_by_venue`` overrides it per
      venue (``{"KRAKEN": EmptyPolicy.FILL}``).
    - ``throttle_ns``: the least time between two updates of the same open candle (0: every
      batch that changes it); closes and revisions are never throttled.
    - ``emit_open``: whether open candles are emitted at all (off for ``--final-only``).
    """

    intervals: tuple[Interval, ...] = DEFAULT_INTERVALS
    lateness_ns: int = 2 * NS_PER_SECOND
    horizon_ns: int = 3600 * NS_PER_SECOND
    empty: EmptyPolicy = EmptyPolicy.SKIP
    empty_by_venue: Mapping[str, EmptyPolicy] = field(default_factory=lambda: MappingProxyType({}))
    throttle_ns: int = 250 * _MS
    emit_open: bool = True

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ValueError("at least one interval is needed")
        if len(set(self.intervals)) != len(self.intervals):
            raise ValueError("intervals must not repeat")
        if tuple(sorted(self.intervals)) != self.intervals:
            raise ValueError("intervals must be sorted, finest first")
        if self.lateness_ns < 0 or self.throttle_ns < 0:
            raise ValueError("lateness and throttle must not be negative")
        if self.horizon_ns < self.lateness_ns:
            raise ValueError("the horizon must be at least the allowed lateness")

    def empty_for(self, instrument: str) -> EmptyPolicy:
        return self.empty_by_venue.get(venue_of(instrument), self.empty)

    def sources(self) -> tuple[int | None, ...]:
        """For each interval, the index of the coarsest finer interval that divides it.

        Such an interval's buckets are built from that one's (cheap); ``None`` means from ticks.
        """
        result: list[int | None] = []
        for k, interval in enumerate(self.intervals):
            source = None
            for j in range(k):
                if interval.ns % self.intervals[j].ns == 0:
                    source = j
            result.append(source)
        return tuple(result)

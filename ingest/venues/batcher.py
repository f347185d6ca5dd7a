"""Micro-batching of a live feed's ticks, per instrument, by size and by age. No I/O.

The bus and the candle engine pay their costs per message, so ticks travel in batches of one
instrument; a live feed must still not hold a tick back for long. A batch closes when it holds
``batch_max`` ticks or when its first tick has waited ``wait_ns`` (wall clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.ticks import Tick


@dataclass(slots=True)
class _Pending:
    since_ns: int
    ticks: list[Tick] = field(default_factory=list)


class MicroBatcher:
    """Collects ticks per instrument; hands back lists of one instrument's ticks, in order."""

    def __init__(self, batch_max: int, wait_ns: int) -> None:
        if batch_max < 1 or wait_ns < 0:
            raise ValueError("batch_max must be positive and wait_ns must not be negative")
        self.batch_max = batch_max
        self.wait_ns = wait_ns
        self._pending: dict[str, _Pending] = {}

    def add(self, tick: Tick, now_ns: int) -> list[Tick] | None:
        """Queue ``tick``; its instrument's ticks when that makes a full batch."""
        pending = self._pending.get(tick.instrument)
        if pending is None:
            pending = self._pending[tick.instrument] = _Pending(now_ns)
        pending.ticks.append(tick)
        if len(pending.ticks) >= self.batch_max:
            del self._pending[tick.instrument]
            return pending.ticks
        return None

    def due(self, now_ns: int) -> list[list[Tick]]:
        """Every batch whose first tick has waited long enough."""
        ready = [
            name for name, pending in self._pending.items()
            if now_ns - pending.since_ns >= self.wait_ns
        ]  # fmt: skip
        return [self._pending.pop(name).ticks for name in ready]

    def take(self, instrument: str) -> list[Tick] | None:
        """The instrument's waiting ticks now, if any (before a gap of that instrument)."""
        pending = self._pending.pop(instrument, None)
        return None if pending is None else pending.ticks

    def take_all(self) -> list[list[Tick]]:
        """Everything waiting (the feed stops or lost its connection)."""
        batches = [pending.ticks for pending in self._pending.values()]
        self._pending.clear()
        return batches

    def next_due(self) -> int | None:
        """The wall clock at which :meth:`due` has a batch, if anything waits."""
        return min(
            (pending.since_ns + self.wait_ns for pending in self._pending.values()), default=None
        )

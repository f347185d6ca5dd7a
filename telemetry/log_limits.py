"""How often a repeated log line is let through: the first of each kind at once, then at most
one per window, the ones held back meanwhile counted. A plain object fed with the time: it
does no I/O and logs nothing itself.

Its shells: the Kafka clients' retries (:class:`streams.kafka.log_limits.RepeatLimiter`, a
logging filter whose passed line says how many like it were held back) and the tracebacks of
the services' catch-all (:class:`web.internal_errors.InternalErrors`, which also says so in a
summary line once a window has ended).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

MAX_KINDS: Final = 256
"""How many kinds are remembered, the least recently let through forgotten first."""


@dataclass(slots=True)
class _Kind:
    last_out: float
    held: int = 0


class RepeatWindows(Generic[K]):
    """The first line of each kind goes through; the others of that kind within ``every``
    seconds of it are held back and counted; the first one after that goes through again and
    opens the next window. Kinds are any hashable keys; at most ``max_kinds`` are remembered
    (bounded, whatever is logged): one forgotten goes through again at once."""

    def __init__(self, every: float, max_kinds: int = MAX_KINDS) -> None:
        if not every > 0:
            raise ValueError("every must be positive")
        if max_kinds < 1:
            raise ValueError("max_kinds must be at least 1")
        self.every = every
        self._max_kinds = max_kinds
        self._kinds: OrderedDict[K, _Kind] = OrderedDict()
        self._next_end = math.inf  # the earliest end of a window with lines held back

    def __len__(self) -> int:
        """How many kinds are remembered (at most ``max_kinds``)."""
        return len(self._kinds)

    def offer(self, key: K, now: float) -> int | None:
        """``None``: hold this line back (it is counted). Else let it through: how many of its
        kind were held back since the one before it went through and not yet told by
        :meth:`ended` (0: none)."""
        kind = self._kinds.get(key)
        if kind is not None and now - kind.last_out < self.every:
            kind.held += 1
            self._next_end = min(self._next_end, kind.last_out + self.every)
            return None
        held = kind.held if kind is not None else 0
        self._kinds[key] = _Kind(now)
        self._kinds.move_to_end(key)
        while len(self._kinds) > self._max_kinds:
            self._kinds.popitem(last=False)
        return held

    def ended(self, now: float) -> list[tuple[K, int]]:
        """The kinds whose window has ended by ``now`` with lines held back, each with how many
        (oldest first); they are told by this, so not again. Cheap to call often: nothing is
        looked at before the earliest such window ends."""
        if now < self._next_end:
            return []
        told: list[tuple[K, int]] = []
        self._next_end = math.inf
        for key, kind in self._kinds.items():
            if not kind.held:
                continue
            end = kind.last_out + self.every
            if now >= end:
                told.append((key, kind.held))
                kind.held = 0
            else:
                self._next_end = min(self._next_end, end)
        return told

"""Reconnect delays: exponential growth, capped, with full jitter. No I/O, no clock.

Full jitter (a delay drawn uniformly between zero and the current cap) spreads the reconnects
of many clients that lost the venue at the same moment, instead of having them all come back
in step and be refused together.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_DOUBLINGS = 62
"""Past this many doublings the cap is always reached; stops the exponent from growing."""


class Backoff:
    """Delays in seconds for successive reconnect attempts.

    Attempt ``k`` (from 0) waits ``uniform(0, min(maximum, initial * 2**k))``; :meth:`reset`
    starts from attempt 0 again (after a connection that stayed healthy).
    """

    def __init__(
        self, initial: float, maximum: float, rng: Callable[[], float] = random.random
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._rng = rng
        self.attempt = 0

    def cap(self) -> float:
        """The largest delay the next attempt may draw."""
        growth: float = 2.0 ** min(self.attempt, _MAX_DOUBLINGS)
        return min(self.maximum, self.initial * growth)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one attempt."""
        delay = self._rng() * self.cap()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0

"""Riding out an outage of a store (the database, most often): when to try again, and what to
tell the operator. Both are plain objects fed with the time; they do no I/O.

- :class:`Backoff`: the pause before the next attempt, growing to a cap, with jitter so that
  many clients coming back at once do not all knock at the same moment.
- :class:`OutageLog`: one line when the outage begins, then at most one every ``every``
  seconds while it lasts (never one per attempt), and one when it ends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Pauses of ``first`` seconds, times ``factor`` after each failure, at most ``most``.

    Each pause is drawn from the upper half of its step ("equal jitter"): never an immediate
    retry, never in lockstep with another client. :meth:`reset` after a success.
    """

    first: float = 0.25
    most: float = 5.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.most or self.factor < 1:
            raise ValueError("backoff needs 0 < first <= most and factor >= 1")

    def next_delay(self) -> float:
        """The pause before the next attempt (counts one more failure)."""
        step = min(self.most, self.first * self.factor ** min(self.failures, 64))
        self.failures += 1
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.failures = 0


@dataclass(slots=True)
class OutageLog:
    """Decides which failures are worth a log line; ``now`` is in seconds (monotonic).

    :meth:`failed` returns the line to log, or ``None`` to stay quiet; :meth:`recovered`
    returns the closing line once an outage ends (``None`` when there was none).
    """

    what: str = "database"
    every: float = 30.0
    then: str = "retrying with backoff"
    """What happens meanwhile, said in the first line."""
    since: float | None = None
    failures: int = 0
    last_error: str = ""
    _next: float = 0.0

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, now: float, error: str) -> str | None:
        self.failures += 1
        self.last_error = error
        if self.since is None:
            self.since = now
            self._next = now + self.every
            return f"{self.what} unavailable ({error}); {self.then}"
        if now < self._next:
            return None
        self._next = now + self.every
        return (
            f"{self.what} still unavailable after {now - self.since:.0f}s"
            f" ({self.failures:,} attempts; last: {error})"
        )

    def recovered(self, now: float) -> str | None:
        if self.since is None:
            return None
        line = f"{self.what} available again after {now - self.since:.1f}s"
        self.since = None
        self.failures = 0
        self.last_error = ""
        return line

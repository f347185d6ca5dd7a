"""A delivery's state machine and its retry schedule (sans-I/O: the time and the random draw
are inputs).

A delivery is ``pending`` (due at its ``next_at``) until an attempt succeeds (``delivered``)
or its last allowed attempt fails (``dead``). After the ``n``-th failed attempt (from 1) the
next is due ``uniform(0, min(max_delay_s, base_s * 2**(n-1)))`` seconds later ("full
jitter": receivers that failed together are not all tried again at one instant). A dead
delivery can be replayed: pending again, due now, with its attempts counted from 0.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_ATTEMPTS: Final = 50
_MAX_DOUBLINGS: Final = 62


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    """Due at ``next_at`` (now, or after a failed attempt)."""
    DELIVERED = "delivered"
    """An attempt was answered with a 2xx status."""
    DEAD = "dead"
    """Every allowed attempt failed: a dead letter, until it is replayed."""


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """At most ``max_attempts`` attempts; the waits between them grow from ``base_s`` by
    doubling, at most ``max_delay_s``, each drawn uniformly below its cap."""

    max_attempts: int = 10
    base_s: float = 5.0
    max_delay_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise ValueError(f"max_attempts is 1 to {MAX_ATTEMPTS}, not {self.max_attempts}")
        if not 0 < self.base_s <= self.max_delay_s:
            raise ValueError("a retry schedule needs 0 < base_s <= max_delay_s")

    def cap(self, failures: int) -> float:
        """The longest wait after ``failures`` failed attempts (1 or more)."""
        growth: float = 2.0 ** min(max(failures - 1, 0), _MAX_DOUBLINGS)
        return min(self.max_delay_s, self.base_s * growth)

    def delay(self, failures: int, draw: Callable[[], float] = random.random) -> float:
        """The wait after ``failures`` failed attempts: ``draw()`` (in ``[0, 1)``) times the
        cap."""
        return draw() * self.cap(failures)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt got: the HTTP ``status`` answered, or the ``error`` that stopped it
    (``timeout``, ``connect-error``, ``address-not-allowed``, ``dns-error``, ...)."""

    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str | None:
        """What went wrong, in a few words (``None`` when it went right)."""
        if self.ok:
            return None
        return self.error if self.error is not None else f"status {self.status}"


@dataclass(frozen=True, slots=True)
class Next:
    """What becomes of a delivery after an attempt: its ``state`` and, pending, when it is due
    (``at_ns``)."""

    state: DeliveryState
    at_ns: int | None = None


def after_attempt(
    attempts: int,
    outcome: Outcome,
    schedule: RetrySchedule,
    now_ns: int,
    draw: Callable[[], float] = random.random,
) -> Next:
    """The delivery after its ``attempts``-th attempt (from 1) ended with ``outcome`` at
    ``now_ns``: delivered; dead once ``attempts`` reaches the schedule's bound; else pending,
    due after the schedule's jittered wait."""
    if outcome.ok:
        return Next(DeliveryState.DELIVERED)
    if attempts >= schedule.max_attempts:
        return Next(DeliveryState.DEAD)
    wait_ns = int(schedule.delay(attempts, draw) * 1e9)
    return Next(DeliveryState.PENDING, now_ns + wait_ns)

"""A clock a test sets by hand, for the sans-I/O objects that take ``clock=`` (a callable
returning seconds)."""

from __future__ import annotations


class Clock:
    """Returns ``now``, which the test moves."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

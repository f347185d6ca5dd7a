"""What a background loop does when one of its rounds fails: tell it, pause, go on.

A loop that runs for the life of a process (an outbox relay, a pruner, a projector) must not
end at the first error it did not foresee: a read-only transaction after a failover, a
statement timeout or a bug in one batch would otherwise stop it silently for good, while
the process looks healthy. :class:`RoundFailures` takes every failure of a round
(``Exception``; a ``CancelledError`` is not one and still ends the loop), logs it as
:class:`~streams.outage.OutageLog` decides (a line when the trouble begins, with the
traceback unless the error is one of ``expected``; at most one every 30 s while it lasts; a
line when a round succeeds again), and hands back the pause before the next round
(:class:`~streams.outage.Backoff`). An expected error is told by its message (it says what
failed), any other by its type and message. :attr:`failing` holds from a failure until a
round succeeds (a readiness check reads it)::

    failures = RoundFailures("auth.events relay", log, expected=(DatabaseUnavailableError,))
    while True:
        try:
            await round()
        except Exception as exc:
            await asyncio.sleep(failures.failed(exc))
            continue
        failures.succeeded()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.outage import Backoff, OutageLog


@dataclass(slots=True)
class RoundFailures:
    """The failures of one loop's rounds; ``what`` names the loop in its log lines."""

    what: str
    log: logging.Logger
    expected: tuple[type[BaseException], ...] = ()
    """Errors that need no traceback (the database or the bus away)."""
    backoff: Backoff = field(default_factory=Backoff)
    every: float = 30.0
    then: str = "retrying with backoff"
    """What the loop does meanwhile, said in the outage's first line."""
    clock: Callable[[], float] = time.monotonic
    outage: OutageLog = field(init=False)

    def __post_init__(self) -> None:
        self.outage = OutageLog(self.what, self.every, self.then)

    @property
    def failing(self) -> bool:
        """From a failure until a round succeeds again."""
        return self.outage.ongoing

    def check(self) -> str | None:
        """A readiness check (:mod:`telemetry.readiness`): ``unavailable`` while failing."""
        return "unavailable" if self.failing else None

    def failed(self, exc: Exception) -> float:
        """Tell ``exc`` (when it is worth a line); the pause before the next round."""
        first = not self.outage.ongoing
        expected = isinstance(exc, self.expected)
        error = (str(exc) or type(exc).__name__) if expected else f"{type(exc).__name__}: {exc}"
        line = self.outage.failed(self.clock(), error)
        if line is not None:
            trace = first and not expected
            self.log.warning("%s", line, exc_info=exc if trace else None)
        return self.backoff.next_delay()

    def succeeded(self) -> None:
        """A round went through: an outage before it is over (told), and the next one
        backs off from the shortest pause."""
        self.backoff.reset()
        line = self.outage.recovered(self.clock())
        if line is not None:
            self.log.warning("%s", line)

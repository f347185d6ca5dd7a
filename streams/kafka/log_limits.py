"""Bounded logging of the Kafka clients' retries: an outage is told once, then now and then.

While the broker is away, aiokafka (and Faust above it) log an ERROR for every failed
connection attempt and request of every client in the process: about a hundred lines a second
in a worker. :class:`RepeatLimiter` lets the first record of each kind through (a kind is the
logger, level and message template, whatever the arguments), then at most one per ``every``
seconds, which says how many like it were held back meanwhile (the counting is
:class:`~telemetry.log_limits.RepeatWindows`'). Nothing else is dropped: a new
kind of error is logged at once. A record that carries a lost connection's traceback (a
socket reset or refused: the broker went away) has it folded into its line, the exception's
type and message: an outage is told in lines, never in tracebacks. :func:`limit_client_logs`
installs it on the loggers of the Kafka clients and Faust; the worker itself says once when
the broker stops answering and once when it answers again (:class:`BrokerWatch`).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from telemetry.log_limits import RepeatWindows

CLIENT_PREFIXES: Final = ("aiokafka", "kafka", "faust", "mode")
"""The packages whose loggers tell the clients' retries."""

NETWORK_MODULES: Final = (
    "kafka.cluster", "kafka.net.connection", "kafka.net.selector", "kafka.net.transport",
)  # fmt: skip
"""The kafka-python modules whose loggers tell a lost connection (with its traceback); loaded
before the limiter goes on, so their loggers exist then (a logger made later has no filter)."""


class RepeatLimiter(logging.Filter):
    """Passes the first record of each kind, then at most one per ``every`` seconds
    (:class:`~telemetry.log_limits.RepeatWindows`)."""

    def __init__(self, every: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._windows: RepeatWindows[tuple[str, int, str]] = RepeatWindows(every)
        self.every = every
        self._clock = clock

    def filter(self, record: logging.LogRecord) -> bool:
        held = self._windows.offer((record.name, record.levelno, str(record.msg)), self._clock())
        if held is None:
            return False
        _fold_lost_connection(record)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.every:g}s]"
        return True


def _fold_lost_connection(record: logging.LogRecord) -> None:
    """A lost connection's traceback as the end of the record's line (other tracebacks kept)."""
    exc = record.exc_info[1] if record.exc_info else None
    if not isinstance(exc, OSError) and not type(exc).__name__.endswith("ConnectionError"):
        return
    record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
    record.args = None
    record.exc_info = None
    record.exc_text = None


def limit_client_logs(
    every: float = 30.0, prefixes: Iterable[str] = CLIENT_PREFIXES
) -> RepeatLimiter:
    """Install one :class:`RepeatLimiter` on every logger of the ``prefixes`` packages.

    A logger's filter holds only for records made on that very logger, not for those of its
    children, so it goes on each one that exists: call this once the clients are imported.
    """
    for module in NETWORK_MODULES:
        importlib.import_module(module)
    limiter = RepeatLimiter(every)
    heads = tuple(prefixes)
    names = [
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and name.split(".")[0] in heads
    ]
    for name in {*heads, *names}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatLimiter) for f in logger.filters):
            logger.addFilter(limiter)
    return limiter


class BrokerWatch:
    """Tells once that the broker stopped answering, and once that it answers again."""

    def __init__(self, log: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._clock = clock
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = self._clock()
            self._log.warning(
                "the Kafka broker does not answer (%s): candles wait until it is back",
                str(error) or type(error).__name__,
            )

    def answered(self) -> None:
        if self._down_since is not None:
            away = self._clock() - self._down_since
            self._down_since = None
            self._log.warning("the Kafka broker answers again after %.1fs away", away)

"""Waiting for a broker that is not there (yet): a clear line per attempt, growing pauses."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class BrokerUnavailableError(ConnectionError):
    """No broker answered within the connect timeout; the message names the address."""


def backoff_delays(first: float = 0.5, most: float = 8.0, factor: float = 2.0) -> list[float]:
    """The pauses between attempts before they stop growing: 0.5, 1, 2, 4, 8 by default."""
    delays = []
    delay = first
    while delay < most:
        delays.append(delay)
        delay *= factor
    return [*delays, most]


async def until_reachable(
    attempt: Callable[[], Awaitable[T]],
    bootstrap: str,
    timeout: float | None,
    say: Callable[[str], None] | None = None,
    *,
    first: float = 0.5,
    most: float = 8.0,
) -> T:
    """Run ``attempt`` until it succeeds, pausing longer after each failure (up to ``most``).

    Each failure is told in one line (``say``, else the log); after ``timeout`` seconds
    (``None``: never) :class:`BrokerUnavailableError` says which address did not answer.
    """
    tell = say or log.warning
    delays = backoff_delays(first, most)
    deadline = None if timeout is None else time.monotonic() + timeout
    tries = 0
    while True:
        try:
            return await attempt()
        except (ConnectionError, OSError, TimeoutError, BrokerProblemError) as exc:
            problem = str(exc) or type(exc).__name__
        except Exception as exc:  # client libraries raise their own error classes
            if not _looks_like_connection_trouble(exc):
                raise
            problem = str(exc) or type(exc).__name__
        delay = delays[min(tries, len(delays) - 1)]
        tries += 1
        if deadline is not None and time.monotonic() + delay > deadline:
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {bootstrap} within {timeout:g}s"
                f" ({tries} attempts; last: {problem}). Start one with `mdp kafka start`,"
                " or set KAFKA_BOOTSTRAP / --bootstrap"
            )
        tell(f"Kafka at {bootstrap} is not reachable ({problem}); retrying in {delay:g}s")
        await asyncio.sleep(delay)


class BrokerProblemError(Exception):
    """Raised by an attempt for a broker that answered but is not ready (no metadata yet)."""


_CONNECTION_WORDS = ("connect", "bootstrap", "unavailable", "timed out", "timeout", "no broker")


def _looks_like_connection_trouble(exc: Exception) -> bool:
    name = type(exc).__name__.lower()
    text = str(exc).lower()
    return any(word in name or word in text for word in _CONNECTION_WORDS)

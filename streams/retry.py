"""Trying again while a dependency is away: :func:`until_available`, the one loop a start
that needs the database (or the bus) runs, so that a platform started while its database is
slow or restarting waits for it instead of stopping."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streams.outage import Backoff, OutageLog

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_WITHIN_S = 60.0
"""How long a start waits for what it needs before it gives up with the last error."""


async def until_available(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    within_s: float = DEFAULT_WITHIN_S,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """The result of ``attempt()``, called again after each :class:`ConnectionError` (a
    :class:`~storage.unavailable.DatabaseUnavailableError` is one) with a growing pause,
    until it succeeds or ``within_s`` seconds have passed, when the last error is raised.
    The outage is logged as :class:`~streams.outage.OutageLog` says: a line when it begins,
    one every 30 s while it lasts, one when it ends."""
    pauses = backoff or Backoff()
    outage = OutageLog(what, then="waiting for it")
    deadline = clock() + within_s
    while True:
        try:
            result = await attempt()
        except ConnectionError as exc:
            now = clock()
            if now >= deadline:
                raise
            line = outage.failed(now, str(exc) or type(exc).__name__)
            if line is not None:
                log.warning(line)
            await asyncio.sleep(min(pauses.next_delay(), max(0.0, deadline - now)))
            continue
        ended = outage.recovered(clock())
        if ended is not None:
            log.warning(ended)
        return result

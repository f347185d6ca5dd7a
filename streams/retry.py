"""Trying again while a dependency is away: :func:`until_available`, the one loop a start
that needs the database (or the bus) runs, so that a platform started while its database is
slow or restarting waits for it instead of stopping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streams.outage import Backoff, OutageLog

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_WITHIN_S = 60.0
"""How long a start waits for what it needs before it gives up with the last error."""


def _first_words(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class StoppedError(Exception):
    """:func:`until_available` was stopped (its ``stop`` event set) before what it waits for
    came back."""


async def until_available(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    within_s: float = DEFAULT_WITHIN_S,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.monotonic,
    retry_on: tuple[type[BaseException], ...] = (ConnectionError,),
    unless: tuple[type[BaseException], ...] = (),
    describe: Callable[[BaseException], str] = _first_words,
    then: str = "waiting for it",
    say: Callable[[str], object] = log.warning,
    stop: asyncio.Event | None = None,
) -> T:
    """The result of ``attempt()``, called again after each error of ``retry_on`` (by
    default :class:`ConnectionError`, which a
    :class:`~storage.unavailable.DatabaseUnavailableError` is; but not one of ``unless``,
    raised at once) with a growing pause, until it succeeds or ``within_s`` seconds have
    passed (``math.inf``: for ever), when the last error is raised.

    The outage is told to ``say`` (by default this module's log, as warnings) as
    :class:`~streams.outage.OutageLog` says: a line when it begins (``what``, the error as
    ``describe`` puts it, and ``then``), one every 30 s while it lasts, one when it ends.
    With ``stop``, a pause ends when it is set, with :class:`StoppedError`."""
    pauses = backoff or Backoff()
    outage = OutageLog(what, then=then)
    deadline = clock() + within_s
    while True:
        try:
            result = await attempt()
        except retry_on as exc:
            now = clock()
            if now >= deadline or isinstance(exc, unless):
                raise
            line = outage.failed(now, describe(exc))
            if line is not None:
                say(line)
            pause = min(pauses.next_delay(), max(0.0, deadline - now))
            if stop is None:
                await asyncio.sleep(pause)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                raise StoppedError(f"stopped while waiting for {what}") from exc
            continue
        ended = outage.recovered(clock())
        if ended is not None:
            say(ended)
        return result

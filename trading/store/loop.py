"""The loop of a log follower (the outbox, a projector): a step until there is nothing new,
then a wait for the log's notification (:mod:`trading.store.wake`) or, failing one, a fallback
poll; through a database or bus outage, or any other failure of a step, a longer wait, and
again. Since such a loop never ends by itself, it tells its failure to the process's readiness
checks (``ready_check``: ``unavailable`` from a failed step until one succeeds again), or a
persistent one (a bad event, a bug, a bus permission error) would go unseen."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from streams.bus import BusError
from streams.outage import Backoff
from streams.rounds import RoundFailures
from telemetry.readiness import READINESS
from trading.store.errors import StoreUnavailableError
from trading.store.wake import LogChannel, wakeups

_log = logging.getLogger(__name__)
MOST_RETRY_S: Final = 5.0
"""The longest pause between two failed steps."""


async def follow_log(
    name: str,
    step: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    *,
    idle_s: float,
    retry_s: float,
    channel: LogChannel | None = None,
    ready_check: str | None = None,
) -> None:
    """Run ``step`` (it returns how much it did) until ``stop`` is set; when it did nothing,
    wait for a notification on ``channel``, at most ``idle_s``. A failed step, whatever the
    error (the database or the bus away, a read-only transaction after a failover, a bug),
    is logged once per outage and tried again after a pause from ``retry_s`` growing to
    :data:`MOST_RETRY_S`: the loop ends only with ``stop`` (or when cancelled). Meanwhile the
    readiness check ``ready_check`` (when given, for the loop's life) reads ``unavailable``."""
    backoff = Backoff(first=retry_s, most=max(retry_s, MOST_RETRY_S))
    expected = (StoreUnavailableError, BusError)
    failures = RoundFailures(name, _log, expected=expected, backoff=backoff)
    forget = None if ready_check is None else READINESS.add(ready_check, failures.check)
    try:
        await _follow(step, stop, idle_s, failures, channel)
    finally:
        if forget is not None:
            forget()


async def _follow(
    step: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    idle_s: float,
    failures: RoundFailures,
    channel: LogChannel | None,
) -> None:
    async with wakeups(channel) as woken:
        while not stop.is_set():
            if woken is not None:
                woken.clear()  # what is appended from here on wakes the next wait
            try:
                count = await step()
            except Exception as exc:
                await _wait(stop, None, failures.failed(exc))
            else:
                failures.succeeded()
                if count == 0:
                    await _wait(stop, woken, idle_s)


async def _wait(stop: asyncio.Event, woken: asyncio.Event | None, timeout: float) -> None:
    """Until ``stop`` or ``woken`` is set, ``timeout`` at most."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, woken) if event is not None]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

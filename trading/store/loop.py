"""The loop of a log follower (the outbox, a projector): a step until there is nothing new,
then a wait for the log's notification (:mod:`trading.store.wake`) or, failing one, a fallback
poll; through a database or bus outage, a longer wait, and again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from streams.bus import BusError
from trading.store.errors import StoreUnavailableError
from trading.store.wake import LogChannel, wakeups

_log = logging.getLogger(__name__)


async def follow_log(
    name: str,
    step: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    *,
    idle_s: float,
    retry_s: float,
    channel: LogChannel | None = None,
) -> None:
    """Run ``step`` (it returns how much it did) until ``stop`` is set; when it did nothing,
    wait for a notification on ``channel``, at most ``idle_s``."""
    async with wakeups(channel) as woken:
        while not stop.is_set():
            if woken is not None:
                woken.clear()  # what is appended from here on wakes the next wait
            try:
                count = await step()
            except (StoreUnavailableError, BusError) as exc:
                _log.warning("%s: %s; retrying in %.1f s", name, exc, retry_s)
                await _wait(stop, None, retry_s)
            else:
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

"""The loop of a log follower (the outbox, a projector): a step until there is nothing new,
then a short wait; through a database or bus outage, a longer one, and again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from streams.bus import BusError
from trading.store.errors import StoreUnavailableError

_log = logging.getLogger(__name__)


async def follow_log(
    name: str,
    step: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    *,
    idle_s: float,
    retry_s: float,
) -> None:
    """Run ``step`` (it returns how much it did) until ``stop`` is set."""
    while not stop.is_set():
        try:
            count = await step()
        except (StoreUnavailableError, BusError) as exc:
            _log.warning("%s: %s; retrying in %.1f s", name, exc, retry_s)
            count, wait = 0, retry_s
        else:
            wait = idle_s
        if count == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

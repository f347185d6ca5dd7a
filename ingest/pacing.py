"""Feeding ticks at the pace of their event time: replays at ``speed``, live feeds at 1.

The arithmetic is plain functions; :func:`paced` is the thin asyncio shell that sleeps until a
slice is due and stamps its receipt time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import numpy as np

from core.ticks import TickBatch

SLICE_NS = 100_000_000
"""Ticks due within this much wall time are sent together (smooth, yet not one by one)."""


def slices(batch: TickBatch, window_ns: int) -> list[TickBatch]:
    """Cut a batch, in arrival order, where its event time enters a new ``window_ns`` window."""
    if len(batch) < 2:
        return [batch]
    window = np.maximum.accumulate(batch.ts_event) // window_ns
    cuts = (np.flatnonzero(window[1:] != window[:-1]) + 1).tolist()
    bounds = [0, *cuts, len(batch)]
    return [batch.take(slice(a, b)) for a, b in itertools.pairwise(bounds)]


def received_at(batch: TickBatch, now_ns: int) -> TickBatch:
    """The batch with every ``ts_recv`` set to ``now_ns``."""
    return dataclasses.replace(batch, ts_recv=np.full(len(batch), now_ns, dtype=np.int64))


async def paced(
    batches: Iterable[TickBatch],
    speed: float | None,
    clock: Callable[[], int] = time.time_ns,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[TickBatch]:
    """Yield the batches' ticks when due, ``ts_recv`` stamped with the wall clock.

    ``speed`` is event seconds per wall second (1 replays in real time, 60 a minute a second);
    ``None`` sends as fast as the consumer takes them. The first tick is due at once.
    """
    start_wall = clock()
    first_event: int | None = None
    for batch in batches:
        parts = [batch] if speed is None else slices(batch, max(1, round(SLICE_NS * speed)))
        for part in parts:
            if not len(part):
                continue
            if speed is not None:
                newest = int(part.ts_event.max())
                if first_event is None:
                    first_event = int(part.ts_event.min())
                due = start_wall + round((newest - first_event) / speed)
                wait = due - clock()
                if wait > 0:
                    await sleep(wait / 1e9)
            yield received_at(part, clock())

"""Rolled-up candles read from storage: a page forward, or the newest few backwards.

Stored candles are streamed a chunk at a time and folded bucket by bucket
(:mod:`charting.rollup`); only the rolled candles of one page are held, at most ``limit``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from charting.rollup import Plan, fold
from charting.times import align_up
from core.candles import Candle
from core.intervals import Interval
from storage.reads import HistoryReads


@dataclass(frozen=True, slots=True)
class RolledPage:
    candles: list[Candle]
    next_start: int | None
    """Open time of the first candle after the page, when the range holds more."""


def page_limit(plan: Plan, limit: int, max_source_rows: int) -> int:
    """How many rolled candles one page holds: ``limit``, fewer for coarse roll-ups."""
    return max(1, min(limit, max_source_rows // plan.ratio))


async def rolled_page(
    history: HistoryReads,
    plan: Plan,
    instrument: str,
    start: int,
    end: int,
    limit: int,
    chunk: int,
    now_ns: int,
) -> RolledPage:
    """The first ``limit`` rolled candles opening in ``[start, end)``."""
    target = plan.target
    first, last = align_up(start, target.ns), align_up(end, target.ns)
    found: list[Candle] = []
    next_start = None
    if first >= last:
        return RolledPage(found, None)
    chunks = history.candle_chunks(instrument, plan.source, first, last, chunk)
    async with contextlib.aclosing(_buckets(chunks, target)) as buckets:
        async for group in buckets:
            if len(found) == limit:
                next_start = target.bucket_start(group[0].open_time)
                break
            found.append(fold(group, target, now_ns))
    return RolledPage(found, next_start)


async def rolled_latest(
    history: HistoryReads,
    plan: Plan,
    instrument: str,
    before: int,
    count: int,
    chunk: int,
    now_ns: int,
) -> list[Candle]:
    """The newest ``count`` rolled candles opening before ``before``, oldest first."""
    target = plan.target
    last = align_up(before, target.ns)
    found: list[Candle] = []
    chunks = history.candle_chunks(instrument, plan.source, 0, last, chunk, descending=True)
    async with contextlib.aclosing(_buckets(chunks, target)) as buckets:
        async for group in buckets:
            found.append(fold(group, target, now_ns))
            if len(found) == count:
                break
    found.reverse()
    return found


async def _buckets(
    chunks: AsyncGenerator[list[Candle], None], target: Interval
) -> AsyncGenerator[list[Candle], None]:
    """The candles of each ``target`` bucket in turn (the input sorted either way)."""
    group: list[Candle] = []
    bucket: int | None = None
    async with contextlib.aclosing(chunks):
        async for candles in chunks:
            for candle in candles:
                start = target.bucket_start(candle.open_time)
                if start != bucket and group:
                    yield group
                    group = []
                bucket = start
                group.append(candle)
    if group:
        yield group

"""The feeds of the running platform: a live synthetic market, or a tick file replayed.

Each is an async iterable of :class:`~core.ticks.TickBatch` es whose ``ts_recv`` is the wall
clock at which they were sent (see :mod:`ingest.pacing`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

from core.ticks import TickBatch
from ingest.files import ReadReport, read_ticks
from ingest.pacing import paced
from ingest.synthetic import DEFAULT_INSTRUMENTS, SyntheticFeed

_TEN_YEARS = 10 * 365 * 86400.0
_BATCHES_PER_SECOND = 10


def live_synthetic(
    instruments: tuple[str, ...] = DEFAULT_INSTRUMENTS, rate: float = 20.0, seed: int = 0
) -> AsyncIterator[TickBatch]:
    """A random-walk market in real time, from now on, until the consumer stops.

    Trade ids start at the start time in microseconds, so a restart never reuses one.
    """
    now = time.time_ns()
    feed = SyntheticFeed(
        instruments=instruments,
        rate=rate,
        duration=_TEN_YEARS,
        start_ns=now,
        seed=seed,
        batch_size=max(1, round(rate / _BATCHES_PER_SECOND)),
        first_trade_id=now // 1000,
    )
    return paced(feed.batches(), speed=1.0)


def replay(
    path: Path,
    report: ReadReport,
    speed: float | None,
    format: str | None = None,
    instrument: str | None = None,
) -> AsyncIterator[TickBatch]:
    """A tick file at ``speed`` times its event time (``None``: as fast as taken).

    The file is opened (and a missing or unreadable one refused) before the first batch.
    """
    return paced(read_ticks(path, format=format, instrument=instrument, report=report), speed)

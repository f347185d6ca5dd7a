"""The feeds of the running platform: a live synthetic market, a tick file replayed, or a
live venue.

Each is an async iterable of :class:`~core.ticks.TickBatch` es whose ``ts_recv`` is the wall
clock at which they arrived (see :mod:`ingest.pacing`); a venue's also yields the
:class:`~core.gaps.FeedGap` s it noticed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from core.codecs import RejectCode, RejectedMessage
from core.ticks import TickBatch
from ingest.files import ReadReport, read_ticks
from ingest.pacing import paced
from ingest.publisher import FeedEvent
from ingest.synthetic import DEFAULT_INSTRUMENTS, SyntheticFeed
from ingest.venues import venue_protocol
from ingest.venues.events import VenueReject
from ingest.venues.runtime import VenueFeed
from ingest.venues.settings import VenueSettings

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


def venue(
    name: str,
    symbols: Sequence[str],
    settings: VenueSettings,
    on_reject: Callable[[RejectedMessage], None],
) -> AsyncIterator[FeedEvent]:
    """A live venue's trades as tick batches and feed gaps; refused frames go to ``on_reject``.

    The venue name and symbols are checked (``ValueError``) before any connection is made.
    """
    feed = VenueFeed(venue_protocol(name), symbols, settings)
    return _venue_events(feed, on_reject)


async def _venue_events(
    feed: VenueFeed, on_reject: Callable[[RejectedMessage], None]
) -> AsyncIterator[FeedEvent]:
    try:
        async for event in feed.events():
            if isinstance(event, VenueReject):
                on_reject(venue_reject(event, feed.url))
            else:
                yield event
    finally:
        feed.stop()


def venue_reject(reject: VenueReject, url: str) -> RejectedMessage:
    """A refused venue frame as a ``md.ticks.rejected`` message: reason, field, the frame."""
    bad = reject.bad
    return RejectedMessage(
        reason=RejectCode.BAD_VENUE_MESSAGE.value,
        detail=f"{bad.reason}: {bad.detail}",
        source=f"ingest.{reject.venue}",
        payload=bad.payload.encode(),
        origin=url,
    )

"""The feeds of the running platform: a live synthetic market, a tick file replayed, or a
live venue.

Each is an async iterable of :class:`~core.ticks.TickBatch` es whose ``ts_recv`` is the wall
clock at which they arrived (see :mod:`ingest.pacing`); a venue's also yields the
:class:`~core.gaps.FeedGap` s it noticed, and stops cleanly when asked
(:func:`stop_feeding`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from core.codecs import RejectCode, RejectedMessage
from core.ticks import TickBatch
from ingest.files import ReadReport
from ingest.files.reader import read_ticks
from ingest.pacing import paced
from ingest.publisher import FeedEvent
from ingest.synthetic import DEFAULT_INSTRUMENTS, SyntheticFeed
from ingest.venues import venue_protocol
from ingest.venues.events import VenueReject
from ingest.venues.runtime import VenueFeed
from ingest.venues.settings import VenueSettings

_TEN_YEARS = 10 * 365 * 86400.0
_BATCHES_PER_SECOND = 10
STOP_GRACE: Final = 5.0
"""Seconds a live venue feed has, once asked to stop, to hand over what it still holds."""


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
    resume: Mapping[str, tuple[int, int]] | None = None,
) -> VenueSource:
    """A live venue's trades as tick batches and feed gaps; refused frames go to ``on_reject``.

    ``resume``: the last stored trade per instrument, ``(trade id, ts_event)``, when the
    platform starts again (see :class:`~ingest.venues.runtime.VenueFeed`). The venue name and
    symbols are checked (``ValueError``) before any connection is made.
    """
    feed = VenueFeed(venue_protocol(name), symbols, settings, resume=resume)
    return VenueSource(feed, on_reject)


class VenueSource:
    """A live venue feed as a feed of the platform: iterate it once.

    :meth:`stop` ends it cleanly: the ticks received and the gaps still open (an outage no
    trade has closed yet, holes within their grace) are handed out, then the iteration ends.
    Cancelling the iteration instead ends it at once, and those are lost.
    """

    def __init__(self, feed: VenueFeed, on_reject: Callable[[RejectedMessage], None]) -> None:
        self.feed = feed
        self._on_reject = on_reject

    def __aiter__(self) -> AsyncIterator[FeedEvent]:
        return self._events()

    def stop(self) -> None:
        self.feed.stop()

    async def _events(self) -> AsyncIterator[FeedEvent]:
        feed = self.feed
        try:
            async for event in feed.events():
                if isinstance(event, VenueReject):
                    self._on_reject(venue_reject(event, feed.url))
                else:
                    yield event
        finally:
            feed.stop()


async def stop_feeding(
    feeding: asyncio.Task[None], source: AsyncIterable[FeedEvent], grace: float = STOP_GRACE
) -> None:
    """End ``feeding``, the task publishing ``source``. A live venue is asked to stop and has
    ``grace`` seconds to publish what it still holds; any other feed (a file or the synthetic
    market holds nothing received), or a venue that takes longer, is cancelled. Returns once
    the task is over; an error it raised is raised here."""
    if isinstance(source, VenueSource) and not feeding.done():
        source.stop()
        await asyncio.wait([feeding], timeout=grace)
    feeding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await feeding


def feed_state(source: object) -> str | None:
    """The ``feed`` check of ``/readyz``: a live venue feed is ``disconnected`` until its
    connection is open and while it is down (it reconnects with backoff); tick files and
    the synthetic market need nothing (``None``)."""
    if isinstance(source, VenueSource) and not source.feed.counters.connected:
        return "disconnected"
    return None


def venue_reject(reject: VenueReject, url: str) -> RejectedMessage:
    """A refused venue frame as a ``md.ticks.rejected`` message: reason, field, the frame
    (cut to :data:`~core.codecs.MAX_REJECTED_PAYLOAD` bytes, and the detail to
    :data:`~core.codecs.MAX_REJECTED_DETAIL` characters, however large the frame was)."""
    bad = reject.bad
    return RejectedMessage(
        reason=RejectCode.BAD_VENUE_MESSAGE.value,
        detail=f"{bad.reason}: {bad.detail}",
        source=f"ingest.{reject.venue}",
        payload=bad.payload.encode(),
        origin=url,
    )

"""What a live venue feed yields, besides tick batches and feed gaps."""

from __future__ import annotations

from dataclasses import dataclass

from core.gaps import FeedGap
from core.ticks import TickBatch
from ingest.venues.base import BadFrame


@dataclass(frozen=True, slots=True)
class VenueReject:
    """A frame (or part of one) the venue's protocol refused, for ``md.ticks.rejected``.

    ``venue`` is the protocol's name (``kraken``), ``ts_recv`` when the frame arrived (wall
    clock, UTC nanoseconds). The feed goes on after it.
    """

    venue: str
    bad: BadFrame
    ts_recv: int


VenueEvent = TickBatch | FeedGap | VenueReject
"""One item of :meth:`ingest.venues.runtime.VenueFeed.events`."""

"""The venues: one room (package) per venue, and the registry that names them.

A venue's room, ``ingest/venues/<venue>/``, holds its live protocol, the readers of its dump
files and its empty-interval convention, and exports them as ``VENUE``
(:class:`~ingest.venues.room.Venue`). :data:`VENUES` names the rooms: adding a venue is its
folder plus one line there. File detection (:mod:`ingest.files.detect`), the live feed
factory (:func:`venue_protocol`) and the engine's empty-interval policy
(:func:`empty_by_venue`) all read the rooms through this registry.

A room is imported only when it is asked for, so a venue whose package is missing (or broken)
fails alone, with a clear error.

    from ingest.venues.runtime import VenueFeed, VenueSettings

    feed = VenueFeed(venue_protocol("kraken"), ["BTC/USD"], VenueSettings())
    async for event in feed.events(): ...   # TickBatch | FeedGap | VenueReject

See ``docs/venues.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from core.engine import EmptyPolicy
from ingest.files.formats import FileFormat
from ingest.venues.base import VenueProtocol
from ingest.venues.room import Venue

VENUES: Mapping[str, str] = MappingProxyType(
    {
        "binance": "ingest.venues.binance",
        "coinbase": "ingest.venues.coinbase",
        "kraken": "ingest.venues.kraken",
    }
)
"""Venue name → the package of its room, which exports ``VENUE``."""


class UnknownVenueError(ValueError):
    """A venue name that is not in :data:`VENUES`, or whose room cannot be loaded."""


def venue(name: str) -> Venue:
    """The room of venue ``name`` (case-insensitive)."""
    key = name.strip().lower()
    if key not in VENUES:
        known = ", ".join(sorted(VENUES))
        raise UnknownVenueError(f"venue must be one of {known}, got {name!r}")
    try:
        room = importlib.import_module(VENUES[key]).VENUE
    except (ImportError, AttributeError) as exc:
        raise UnknownVenueError(f"the {key} connector is not available: {exc}") from exc
    if not isinstance(room, Venue) or room.name != key:
        raise UnknownVenueError(f"the {key} connector is not available: {VENUES[key]}.VENUE")
    return room


def venues() -> tuple[Venue, ...]:
    """Every registered venue's room, in the registry's order."""
    return tuple(venue(name) for name in VENUES)


def venue_protocol(name: str) -> VenueProtocol:
    """A new protocol object of venue ``name`` (case-insensitive), with default options."""
    return venue(name).protocol()


def empty_by_venue() -> Mapping[str, EmptyPolicy]:
    """Each venue's empty-interval convention by the venue part of its instruments
    (``{"KRAKEN": EmptyPolicy.FILL, ...}``): :attr:`core.engine.EngineConfig.empty_by_venue`."""
    return MappingProxyType({room.instrument_venue: room.empty for room in venues()})


def venue_file_formats() -> tuple[FileFormat, ...]:
    """The dump formats of every venue, in the registry's order."""
    return tuple(fmt for room in venues() for fmt in room.files)

"""Live venue connectors: each venue's protocol, and the runtime that drives them.

``VENUES`` names the venues ``mdp ingest --venue`` knows; :func:`venue_protocol` builds a
fresh protocol for one connection. A venue's module is imported only when it is asked for,
so a venue whose package is missing (or broken) fails alone, with a clear error.

    from ingest.venues.runtime import VenueFeed, VenueSettings

    feed = VenueFeed(venue_protocol("kraken"), ["BTC/USD"], VenueSettings())
    async for event in feed.events(): ...   # TickBatch | FeedGap | VenueReject

See ``docs/venues.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import cast

from ingest.venues.base import VenueProtocol

VENUES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "binance": ("ingest.venues.binance", "BinanceSpot"),
        "coinbase": ("ingest.venues.coinbase", "CoinbaseExchange"),
        "kraken": ("ingest.venues.kraken", "KrakenSpot"),
    }
)
"""Venue name → (module, protocol class); the class is built without arguments."""


class UnknownVenueError(ValueError):
    """A venue name that is not in :data:`VENUES`, or whose connector cannot be loaded."""


def venue_protocol(name: str) -> VenueProtocol:
    """A new protocol object of venue ``name`` (case-insensitive), with default options."""
    key = name.strip().lower()
    if key not in VENUES:
        known = ", ".join(sorted(VENUES))
        raise UnknownVenueError(f"venue must be one of {known}, got {name!r}")
    module_name, class_name = VENUES[key]
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise UnknownVenueError(f"the {key} connector is not available: {exc}") from exc
    return cast(VenueProtocol, factory())

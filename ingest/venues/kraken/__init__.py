"""Kraken Spot WebSocket v2: the ``trade`` channel (see :mod:`.protocol`)."""

from ingest.venues.kraken.protocol import KrakenSpot, normalise_symbol

__all__ = ["KrakenSpot", "normalise_symbol"]

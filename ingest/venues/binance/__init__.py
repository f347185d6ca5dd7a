"""Binance spot: the ``aggTrade`` and ``trade`` market streams (see :mod:`.protocol`)."""

from ingest.venues.binance.protocol import BinanceSpot, normalise_symbol

__all__ = ["BinanceSpot", "normalise_symbol"]

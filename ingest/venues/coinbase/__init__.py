"""Coinbase Exchange: the ``matches`` and ``heartbeat`` channels (see :mod:`.protocol`)."""

from ingest.venues.coinbase.protocol import CHANNELS, CoinbaseExchange, normalise_product

__all__ = ["CHANNELS", "CoinbaseExchange", "normalise_product"]

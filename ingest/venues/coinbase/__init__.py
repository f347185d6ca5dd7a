"""Coinbase Exchange: the ``matches`` and ``heartbeat`` channels (:mod:`.protocol`). No dump
files are read. Its candles skip intervals without trades."""

from core.engine import EmptyPolicy
from ingest.venues.coinbase.protocol import CHANNELS, CoinbaseExchange, normalise_product
from ingest.venues.room import Venue

VENUE = Venue(
    name="coinbase",
    protocol=CoinbaseExchange,
    empty=EmptyPolicy.SKIP,
    example_symbols=("BTC-USD",),
)

__all__ = ["CHANNELS", "VENUE", "CoinbaseExchange", "normalise_product"]

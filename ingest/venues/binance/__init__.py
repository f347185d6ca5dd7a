"""Binance spot: the ``aggTrade`` and ``trade`` market streams (:mod:`.protocol`) and the
aggTrades dump files (:mod:`.files`). Its candles skip intervals without trades."""

from core.engine import EmptyPolicy
from ingest.venues.binance.files import AGGTRADES, instrument_from_name, read_binance_aggtrades
from ingest.venues.binance.protocol import BinanceSpot, normalise_symbol
from ingest.venues.room import Venue

VENUE = Venue(
    name="binance",
    protocol=BinanceSpot,
    empty=EmptyPolicy.SKIP,
    example_symbols=("BTCUSDT", "ETHUSDT"),
    files=(AGGTRADES,),
)

__all__ = [
    "AGGTRADES",
    "VENUE",
    "BinanceSpot",
    "instrument_from_name",
    "normalise_symbol",
    "read_binance_aggtrades",
]

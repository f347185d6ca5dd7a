"""Kraken Spot: the WebSocket v2 ``trade`` channel (:mod:`.protocol`) and the REST trades
responses (:mod:`.files`). Kraken's own candles fill an interval without trades with a flat
candle at the last close (volume 0), and so do the platform's candles of Kraken."""

from core.engine import EmptyPolicy
from ingest.venues.kraken.files import TRADES, read_kraken_trades
from ingest.venues.kraken.protocol import KrakenSpot, normalise_symbol
from ingest.venues.room import Venue

VENUE = Venue(
    name="kraken",
    protocol=KrakenSpot,
    empty=EmptyPolicy.FILL,
    example_symbols=("BTC/USD",),
    files=(TRADES,),
)

__all__ = ["TRADES", "VENUE", "KrakenSpot", "normalise_symbol", "read_kraken_trades"]

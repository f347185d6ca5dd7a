"""The bot SDK: live market data and the account's own orders, fills, positions and fired
alerts over the gateway, the trading API, and credentials for both (``docs/sdk.md``).

It imports ``core`` and the libraries it talks with (``websockets``, ``httpx``, ``msgspec``),
never a service: it is what a bot author installs.
"""

from sdk.credentials import AccessToken, Credentials, TokenSource
from sdk.errors import SdkError
from sdk.models import Balance, Fill, Order, Position
from sdk.protocol import Backoff
from sdk.stream import MarketStream
from sdk.trading import TradingClient
from sdk.wire import (
    AlertUpdate,
    Candle,
    CandleUpdate,
    Channel,
    Conflated,
    Error,
    FillUpdate,
    Gap,
    Message,
    OrderUpdate,
    PositionUpdate,
    PrivateSnapshot,
    Snapshot,
    Tick,
    TickUpdate,
)

__all__ = [
    "AccessToken",
    "AlertUpdate",
    "Backoff",
    "Balance",
    "Candle",
    "CandleUpdate",
    "Channel",
    "Conflated",
    "Credentials",
    "Error",
    "Fill",
    "FillUpdate",
    "Gap",
    "MarketStream",
    "Message",
    "Order",
    "OrderUpdate",
    "Position",
    "PositionUpdate",
    "PrivateSnapshot",
    "SdkError",
    "Snapshot",
    "Tick",
    "TickUpdate",
    "TokenSource",
    "TradingClient",
]

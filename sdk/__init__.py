"""The bot SDK: live market data over the gateway, and credentials for it (``docs/sdk.md``).

It imports ``core`` and the libraries it talks with (``websockets``, ``httpx``, ``msgspec``),
never a service: it is what a bot author installs.
"""

from sdk.credentials import AccessToken, Credentials, TokenSource
from sdk.errors import SdkError
from sdk.protocol import Backoff
from sdk.stream import MarketStream
from sdk.wire import (
    Candle,
    CandleUpdate,
    Channel,
    Conflated,
    Error,
    Gap,
    Message,
    Snapshot,
    Tick,
    TickUpdate,
)

__all__ = [
    "AccessToken",
    "Backoff",
    "Candle",
    "CandleUpdate",
    "Channel",
    "Conflated",
    "Credentials",
    "Error",
    "Gap",
    "MarketStream",
    "Message",
    "SdkError",
    "Snapshot",
    "Tick",
    "TickUpdate",
    "TokenSource",
]

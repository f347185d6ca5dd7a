"""The gateway's messages as typed values, and the requests the SDK sends
(``docs/protocol.md``).

Prices, sizes and volumes arrive as exact decimal strings and are decoded as
:class:`~decimal.Decimal`; times stay integers (a candle's ``open_time`` in epoch
milliseconds, a tick's ``ts_event`` in epoch nanoseconds). Messages of a type the SDK does not
know are skipped, and unknown fields are ignored, as the protocol asks of clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec

CANDLES: Final = "candles"
TICKS: Final = "ticks"


@dataclass(frozen=True, slots=True, order=True)
class Channel:
    """A channel: ``kind`` ``candles`` (with an ``interval``) or ``ticks`` (without)."""

    kind: Literal["candles", "ticks"]
    instrument: str
    interval: str | None = None

    def fields(self) -> dict[str, str]:
        found = {"channel": self.kind, "instrument": self.instrument}
        if self.interval is not None:
            found["interval"] = self.interval
        return found


class Candle(msgspec.Struct, frozen=True):
    """One version of a candle (``revision`` counts those before it)."""

    instrument: str
    interval: str
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    vwap: Decimal
    taker_buy_volume: Decimal
    trades: int
    first_trade_id: int | None
    last_trade_id: int | None
    revision: int
    status: str
    gap: bool = False


class Tick(msgspec.Struct, frozen=True):
    trade_id: int
    price: Decimal
    size: Decimal
    side: str
    ts_event: int


class _Message(msgspec.Struct, frozen=True):
    """A message about one channel."""

    channel: Literal["candles", "ticks"]
    instrument: str

    def channel_key(self) -> Channel:
        return Channel(self.channel, self.instrument, getattr(self, "interval", None))


class Snapshot(_Message, frozen=True):
    """A channel's state, current to ``seq``; ``reset``: drop the live data held first."""

    epoch: str
    seq: int
    reset: bool
    interval: str | None = None
    candles: list[Candle] = []
    ticks: list[Tick] = []


class CandleUpdate(_Message, frozen=True):
    """A candle's newest version: upsert it by ``open_time``, keeping the higher revision."""

    interval: str
    seq: int
    candle: Candle


class TickUpdate(_Message, frozen=True):
    seq: int
    ticks: list[Tick]


class Conflated(_Message, frozen=True):
    """``dropped`` older updates of the channel were replaced by newer ones (the sequence
    numbers that follow skip them): the candles that follow are the latest versions."""

    dropped: int
    interval: str | None = None


class Gap(msgspec.Struct, frozen=True):
    """A feed gap: trades of ``instrument`` in ``[start, end)`` (epoch ms) may be missing."""

    instrument: str
    start: int
    end: int
    reason: str
    detail: str = ""


class Error(msgspec.Struct, frozen=True):
    """An ``error``. One with ``id`` None and a ``channel`` is the gateway's own doing (an
    entitlement change dropped that channel); it is handed to the bot as a message."""

    code: str
    message: str
    id: int | str | None = None
    field: str | None = None
    channel: str | None = None
    instrument: str | None = None
    interval: str | None = None


class Subscribed(_Message, frozen=True):
    id: int | str | None
    epoch: str
    interval: str | None = None


class Unsubscribed(msgspec.Struct, frozen=True):
    id: int | str | None


class Authenticated(msgspec.Struct, frozen=True):
    id: int | str | None
    plan: str | None = None
    delay: int = 0
    expires: int | None = None


class _Envelope(msgspec.Struct):
    type: str


Message = Snapshot | CandleUpdate | TickUpdate | Conflated | Gap | Error
"""What a :class:`~sdk.stream.MarketStream` hands to the bot."""
Reply = Subscribed | Unsubscribed | Authenticated
Incoming = Message | Reply

_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    "snapshot": msgspec.json.Decoder(Snapshot),
    "candle": msgspec.json.Decoder(CandleUpdate),
    "tick": msgspec.json.Decoder(TickUpdate),
    "conflated": msgspec.json.Decoder(Conflated),
    "gap": msgspec.json.Decoder(Gap),
    "error": msgspec.json.Decoder(Error),
    "subscribed": msgspec.json.Decoder(Subscribed),
    "unsubscribed": msgspec.json.Decoder(Unsubscribed),
    "authenticated": msgspec.json.Decoder(Authenticated),
}
_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_ENCODE: Final = msgspec.json.Encoder().encode


def decode(frame: str | bytes) -> Incoming | None:
    """The message in ``frame``; None for a type the SDK does not use (``heartbeat``,
    ``pong``, and types added later). Raises ``msgspec.DecodeError`` on a malformed one."""
    decoder = _DECODERS.get(_ENVELOPE.decode(frame).type)
    if decoder is None:
        return None
    message: Incoming = decoder.decode(frame)
    return message


def request(op: str, rid: int, **fields: Any) -> str:
    """A request frame (text)."""
    return _ENCODE({"op": op, "id": rid, **fields}).decode()

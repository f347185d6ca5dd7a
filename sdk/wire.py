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

from core.alerts import AlertFired
from core.trading_events import TradingEvent
from sdk.models import Fill, Order, Position, item_of

CANDLES: Final = "candles"
TICKS: Final = "ticks"
ORDERS: Final = "orders"
FILLS: Final = "fills"
POSITIONS: Final = "positions"
ALERTS: Final = "alerts"
PRIVATE: Final = frozenset({ORDERS, FILLS, POSITIONS, ALERTS})
"""The account's own channels: no instrument, only with a token of an account (that may
trade, but for ``alerts``)."""

ChannelKind = Literal["candles", "ticks", "orders", "fills", "positions", "alerts"]
PrivateKind = Literal["orders", "fills", "positions", "alerts"]


@dataclass(frozen=True, slots=True, order=True)
class Channel:
    """A channel: ``kind`` ``candles`` (with an ``instrument`` and an ``interval``),
    ``ticks`` (an instrument), or one of the account's own, ``orders``, ``fills``,
    ``positions`` and ``alerts`` (neither)."""

    kind: ChannelKind
    instrument: str | None = None
    interval: str | None = None

    def fields(self) -> dict[str, str]:
        found: dict[str, str] = {"channel": self.kind}
        if self.instrument is not None:
            found["instrument"] = self.instrument
        if self.interval is not None:
            found["interval"] = self.interval
        return found


PRIVATE_CHANNELS: Final[dict[str, Channel]] = {
    kind: Channel(kind) for kind in ("orders", "fills", "positions", "alerts")
}
"""The account's own channels by name."""


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


class _Private(msgspec.Struct, frozen=True, kw_only=True):
    """A message of one of the account's own channels."""

    channel: PrivateKind
    account: int

    def channel_key(self) -> Channel:
        return Channel(self.channel)


class PrivateSubscribed(_Private, frozen=True, kw_only=True):
    id: int | str | None
    epoch: str


class PrivateSnapshot(_Private, frozen=True, kw_only=True):
    """The account's state on ``channel``, current to ``seq``: its newest ``orders``,
    ``fills`` or fired ``alerts`` (oldest first, with the ``unread`` notifications), or every
    ``position``; ``reset``: drop what was held first."""

    epoch: str
    seq: int
    reset: bool
    orders: list[Order] = []
    fills: list[Fill] = []
    positions: list[Position] = []
    alerts: list[AlertFired] = []
    unread: int = 0


class OrderUpdate(_Private, frozen=True, kw_only=True):
    """An event of one of the account's orders (``order-accepted``, ``order-filled``...):
    ``core.trading_events``' types, amounts exact."""

    seq: int
    event: TradingEvent


class FillUpdate(_Private, frozen=True, kw_only=True):
    """A fill of one of the account's orders."""

    seq: int
    fill: Fill


class PositionUpdate(_Private, frozen=True, kw_only=True):
    """A position as it stands after a fill."""

    seq: int
    position: Position


class AlertUpdate(_Private, frozen=True, kw_only=True):
    """One of the account's alerts fired (each ``fire_id`` once); one more unread
    notification."""

    seq: int
    alert: AlertFired


class _PrivateFrame(msgspec.Struct, frozen=True):
    """A private channel's frame before its items are typed (they come wrapped as the REST
    lists give them, or flat: :func:`sdk.models.item_of`)."""

    type: str
    channel: PrivateKind
    account: int
    id: int | str | None = None
    epoch: str = ""
    seq: int = 0
    reset: bool = False
    orders: list[msgspec.Raw] = []
    fills: list[msgspec.Raw] = []
    positions: list[msgspec.Raw] = []
    alerts: list[AlertFired] = []
    unread: int = 0
    event: msgspec.Raw = msgspec.Raw(b"")
    fill: msgspec.Raw = msgspec.Raw(b"")
    position: msgspec.Raw = msgspec.Raw(b"")
    alert: AlertFired | None = None


class _Envelope(msgspec.Struct):
    type: str
    channel: str | None = None


Message = (
    Snapshot | CandleUpdate | TickUpdate | Conflated | Gap | Error
    | PrivateSnapshot | OrderUpdate | FillUpdate | PositionUpdate | AlertUpdate
)  # fmt: skip
"""What a :class:`~sdk.stream.MarketStream` hands to the bot."""
PrivateUpdate = OrderUpdate | FillUpdate | PositionUpdate | AlertUpdate
Reply = Subscribed | PrivateSubscribed | Unsubscribed | Authenticated
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
_PRIVATE_FRAME: Final = msgspec.json.Decoder(_PrivateFrame)
_EVENT: Final = msgspec.json.Decoder(TradingEvent)
_ENCODE: Final = msgspec.json.Encoder().encode


def decode(frame: str | bytes) -> Incoming | None:
    """The message in ``frame``; None for a type the SDK does not use (``heartbeat``,
    ``pong``, and types added later). Raises ``msgspec.DecodeError`` on a malformed one."""
    envelope = _ENVELOPE.decode(frame)
    if envelope.channel in PRIVATE and envelope.type not in ("error", "unsubscribed"):
        return _private(_PRIVATE_FRAME.decode(frame))
    decoder = _DECODERS.get(envelope.type)
    if decoder is None:
        return None
    message: Incoming = decoder.decode(frame)
    return message


def _private(frame: _PrivateFrame) -> Incoming | None:
    channel, account = frame.channel, frame.account
    if frame.type == "subscribed":
        return PrivateSubscribed(channel=channel, account=account, id=frame.id, epoch=frame.epoch)
    if frame.type == "snapshot":
        return PrivateSnapshot(
            channel=channel, account=account, epoch=frame.epoch, seq=frame.seq, reset=frame.reset,
            orders=[item_of(Order, raw) for raw in frame.orders],
            fills=[item_of(Fill, raw) for raw in frame.fills],
            positions=[item_of(Position, raw) for raw in frame.positions],
            alerts=frame.alerts, unread=frame.unread,
        )  # fmt: skip
    seq = frame.seq
    if frame.type == "order" and frame.event:
        event = _EVENT.decode(frame.event)
        return OrderUpdate(channel=channel, account=account, seq=seq, event=event)
    if frame.type == "fill" and frame.fill:
        fill = item_of(Fill, frame.fill)
        return FillUpdate(channel=channel, account=account, seq=seq, fill=fill)
    if frame.type == "position" and frame.position:
        position = item_of(Position, frame.position)
        return PositionUpdate(channel=channel, account=account, seq=seq, position=position)
    if frame.type == "alert" and frame.alert is not None:
        return AlertUpdate(channel=channel, account=account, seq=seq, alert=frame.alert)
    if frame.type in ("order", "fill", "position", "alert"):
        raise msgspec.ValidationError(f"a {frame.type} message without its {frame.type}")
    return None


def request(op: str, rid: int, **fields: Any) -> str:
    """A request frame (text)."""
    return _ENCODE({"op": op, "id": rid, **fields}).decode()

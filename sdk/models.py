"""The trading service's answers as typed values: orders, fills, positions, balances
(``docs/trading.md``, "HTTP interface"; ``docs/sdk.md``, "Trading").

Amounts are exact :class:`~decimal.Decimal` (the service sends decimal strings), times epoch
nanoseconds. The REST lists wrap each item (``{"seq": 3, "fill": {...}}``, ``{"position":
{...}, "last_price": ...}``); the SDK flattens them into one value per item, and takes the
private WebSocket channels' items (``docs/protocol.md``) in either shape, so a fill is one
:class:`Fill` wherever it came from. Unknown fields are ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec

from core.trading_events import Liquidity, OrderSide, OrderStatus, OrderType, TimeInForce

_ZERO: Final = Decimal(0)


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """An order as the service holds it; ``seq`` and ``average_fill_price`` come with a
    listing (``orders()``), None elsewhere."""

    account: int
    order_id: str
    client_order_id: str
    instrument: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    status: OrderStatus
    filled_quantity: Decimal = _ZERO
    filled_notional: Decimal = _ZERO
    venue_order_id: str | None = None
    reason_code: str | None = None
    """Why it was denied or rejected."""
    ts_submitted: int = 0
    ts_last: int = 0
    triggered_by: int | None = None
    """The trade (its ``trade_id``) that triggered a stop, once it has."""
    ts_triggered: int | None = None
    """When that trade printed (epoch ns)."""
    seq: int | None = None
    average_fill_price: Decimal | None = None


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One fill of an order: ``quantity`` at ``price``, ``fee`` in ``fee_currency``; ``ts``
    epoch ns; ``seq`` its number in the account (what ``fills(after=...)`` pages by)."""

    order_id: str
    fill_id: str
    instrument: str
    side: OrderSide
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: Liquidity
    trade_id: int
    ts: int
    account: int | None = None
    seq: int | None = None

    @property
    def signed_quantity(self) -> Decimal:
        """``quantity``, negative for a sell: what the fill adds to the position."""
        return self.quantity if self.side is OrderSide.BUY else -self.quantity


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """A position: ``quantity`` signed (negative short), its ``average_price`` and
    ``realised`` P&L; ``last_price`` and ``unrealised`` where the service has a price."""

    instrument: str
    quantity: Decimal = _ZERO
    average_price: Decimal = _ZERO
    realised: Decimal = _ZERO
    last_price: Decimal | None = None
    unrealised: Decimal | None = None


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """One currency of the account: cash, what orders reserve of it, the fees paid in it,
    and ``available`` (cash less reserved)."""

    currency: str
    cash: Decimal = _ZERO
    reserved: Decimal = _ZERO
    fees: Decimal = _ZERO
    available: Decimal = _ZERO


# -- the REST items' shapes (the lists wrap each item; the SDK hands out the flat values) -------


class OrderItem(msgspec.Struct, frozen=True):
    order: Order
    seq: int | None = None
    average_fill_price: Decimal | None = None


class FillItem(msgspec.Struct, frozen=True):
    fill: Fill
    seq: int | None = None


class PositionItem(msgspec.Struct, frozen=True):
    position: Position
    last_price: Decimal | None = None
    unrealised: Decimal | None = None


class BalanceItem(msgspec.Struct, frozen=True):
    balance: Balance
    available: Decimal


def order_of(item: OrderItem | Order) -> Order:
    if isinstance(item, Order):
        return item
    return msgspec.structs.replace(
        item.order, seq=item.seq, average_fill_price=item.average_fill_price
    )


def fill_of(item: FillItem | Fill) -> Fill:
    if isinstance(item, Fill):
        return item
    return msgspec.structs.replace(item.fill, seq=item.seq)


def position_of(item: PositionItem | Position) -> Position:
    if isinstance(item, Position):
        return item
    return msgspec.structs.replace(
        item.position, last_price=item.last_price, unrealised=item.unrealised
    )


def balance_of(item: BalanceItem) -> Balance:
    return msgspec.structs.replace(item.balance, available=item.available)


T = TypeVar("T")

_WRAPPED: Final[dict[type[Any], msgspec.json.Decoder[Any]]] = {
    Order: msgspec.json.Decoder(OrderItem),
    Fill: msgspec.json.Decoder(FillItem),
    Position: msgspec.json.Decoder(PositionItem),
}
_FLAT: Final[dict[type[Any], msgspec.json.Decoder[Any]]] = {
    kind: msgspec.json.Decoder(kind) for kind in (Order, Fill, Position)
}
_FLATTEN: Final[dict[type[Any], Any]] = {Order: order_of, Fill: fill_of, Position: position_of}


def item_of(kind: type[T], raw: bytes | msgspec.Raw) -> T:
    """An order, fill or position from its JSON, wrapped as the REST lists give it or flat;
    raises ``msgspec.DecodeError`` when it is neither."""
    try:
        wrapped = _WRAPPED[kind].decode(raw)
    except msgspec.ValidationError:
        made: T = _FLAT[kind].decode(raw)
        return made
    flat: T = _FLATTEN[kind](wrapped)
    return flat

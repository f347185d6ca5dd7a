"""Orders and their events for the trading tests: one valid event of each kind for an order."""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

from core import trading_events as te
from trading.domain.orders import Order, OrderRequest

D = Decimal
INSTRUMENT = "KRAKEN:XBTUSDT"
PRICES: dict[te.OrderType, tuple[Decimal | None, Decimal | None]] = {
    te.OrderType.MARKET: (None, None),
    te.OrderType.LIMIT: (D("100"), None),
    te.OrderType.STOP_MARKET: (None, D("110")),
}


class Ids(TypedDict):
    account: int
    order_id: str
    ts: int


def request(type_: te.OrderType = te.OrderType.LIMIT, **changes: object) -> OrderRequest:
    """A valid buy of 2 of ``type_`` with ``changes``."""
    price, stop_price = PRICES[type_]
    fields: dict[str, object] = {
        "account": 7,
        "client_order_id": "bot-1",
        "instrument": INSTRUMENT,
        "side": te.OrderSide.BUY,
        "type": type_,
        "quantity": D("2"),
        "price": price,
        "stop_price": stop_price,
        "time_in_force": te.TimeInForce.GTC,
    }
    fields.update(changes)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def submitted(type_: te.OrderType, order_id: str = "o-1") -> te.OrderSubmitted:
    return request(type_).submitted(order_id, ts=1)


def event(kind: str, order: Order, variant: str = "rest") -> te.OrderEvent:
    """A valid event of ``kind`` for ``order``; a fill takes half the rest (``part``) or all
    of it (``rest``)."""
    ids = Ids(account=order.account, order_id=order.order_id, ts=order.ts_last + 1)
    if kind == "order-filled":
        quantity = order.remaining / 2 if variant == "part" else order.remaining
        return te.OrderFilled(
            **ids,
            fill_id=f"f-{len(order.fill_ids)}",
            instrument=order.instrument,
            side=order.side,
            price=order.price or D("105"),
            quantity=quantity,
            fee=D("0.01"),
            fee_currency="USDT",
            liquidity=te.Liquidity.TAKER,
            trade_id=1,
        )
    if kind == "order-updated":
        return te.OrderUpdated(
            **ids,
            quantity=order.quantity + 1,
            price=order.price,
            stop_price=order.stop_price,
        )
    simple: dict[str, te.OrderEvent] = {
        "order-submitted": submitted(order.type, order.order_id),
        "order-denied": te.OrderDenied(
            **ids,
            reason_code="max-notional",
            field="quantity",
            message="too big",
        ),
        "order-accepted": te.OrderAccepted(**ids, venue_order_id="v-1"),
        "order-rejected": te.OrderRejected(
            **ids,
            reason_code="venue-closed",
            message="closed",
        ),
        "order-triggered": te.OrderTriggered(**ids),
        "order-canceled": te.OrderCanceled(**ids, reason="by the client"),
        "order-expired": te.OrderExpired(**ids),
    }
    return simple[kind]

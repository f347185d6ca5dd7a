"""The trading API's OpenAPI 3.1 document (:mod:`web.openapi` makes it): its bodies and
answers."""

from __future__ import annotations

from typing import Any

import msgspec

from core.trading_events import OrderSide, OrderType, TimeInForce, TradingEvent
from trading.domain.orders import Order
from trading.readmodels.queries import BalanceView, FillView, OrderView, PositionView
from web.openapi import document as openapi_document
from web.openapi import operation, param


class PlaceBody(msgspec.Struct, kw_only=True):
    """A new order (amounts as decimal strings)."""

    client_order_id: str
    instrument: str
    side: OrderSide
    type: OrderType
    quantity: str
    price: str | None = None
    stop_price: str | None = None
    time_in_force: TimeInForce = TimeInForce.GTC


class AmendBody(msgspec.Struct, kw_only=True):
    """What changes in an open order (at least one)."""

    quantity: str | None = None
    price: str | None = None
    stop_price: str | None = None


class DepositBody(msgspec.Struct, kw_only=True):
    """Paper money (only where the service allows it): ``amount`` a decimal string above 0,
    at most 1,000,000,000, at most 8 decimal places."""

    currency: str
    amount: str


class OrderAnswer(msgspec.Struct):
    order: Order


class OrdersPage(msgspec.Struct):
    orders: list[OrderView]
    next_after: int | None


class FillsPage(msgspec.Struct):
    fills: list[FillView]
    next_after: int | None


class Positions(msgspec.Struct):
    positions: list[PositionView]


class Balances(msgspec.Struct):
    balances: list[BalanceView]


class AuditEvent(msgspec.Struct):
    version: int
    event: TradingEvent


class EventsPage(msgspec.Struct):
    events: list[AuditEvent]
    next_after: int | None


_TYPES: tuple[type[Any], ...] = (
    PlaceBody,
    AmendBody,
    DepositBody,
    OrderAnswer,
    OrdersPage,
    FillsPage,
    Positions,
    Balances,
    EventsPage,
)
_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]
_ORDER_ID = param("order_id", "path", "string")


def document() -> dict[str, Any]:
    place = operation(
        "Place an order (the same client_order_id again: that order)", "OrderAnswer", "PlaceBody"
    )
    place["responses"]["201"] = place["responses"]["200"]
    deposit = operation(
        "Deposit paper money (where allowed): the account's balances after it",
        "Balances",
        "DepositBody",
        status="201",
    )
    return openapi_document(
        "Ganntec trading API",
        _TYPES,
        {
            "/trading/v1/orders": {
                "post": place,
                "get": operation(
                    "The account's orders, oldest first",
                    "OrdersPage",
                    None,
                    *_PAGE,
                    {"name": "open", "in": "query", "schema": {"type": "boolean"}},
                ),
            },
            "/trading/v1/orders/{order_id}": {
                "get": operation("One order", "OrderAnswer", None, _ORDER_ID),
                "delete": operation("Cancel an order", "OrderAnswer", None, _ORDER_ID),
                "patch": operation("Amend an order", "OrderAnswer", "AmendBody", _ORDER_ID),
            },
            "/trading/v1/fills": {
                "get": operation("The account's fills", "FillsPage", None, *_PAGE)
            },
            "/trading/v1/positions": {"get": operation("The account's positions", "Positions")},
            "/trading/v1/balances": {"get": operation("The account's balances", "Balances")},
            "/trading/v1/deposits": {"post": deposit},
            "/trading/v1/events": {
                "get": operation(
                    "The account's events, its audit trail", "EventsPage", None, *_PAGE
                )
            },
        },
    )

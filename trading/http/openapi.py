"""The trading API's OpenAPI 3.1 document, its schemas made by msgspec from the very types
the app encodes (so the document cannot drift from the answers)."""

from __future__ import annotations

from typing import Any

import msgspec

from core.trading_events import OrderSide, OrderType, TimeInForce, TradingEvent
from trading.domain.orders import Order
from trading.readmodels.queries import BalanceView, FillView, OrderView, PositionView

_REF = "#/components/schemas/"


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


class Problem(msgspec.Struct, kw_only=True):
    """A refusal (RFC 9457): ``code`` is ours; ``parameter`` the field at fault."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    parameter: str | None = None


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
    Problem,
)
_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]
_ORDER_ID = [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _answer(schema: str, status: str = "200") -> dict[str, Any]:
    problem = {"content": {"application/problem+json": {"schema": {"$ref": _REF + "Problem"}}}}
    return {
        status: {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": _REF + schema}}},
        },
        "default": {"description": "a refusal", **problem},
    }


def _operation(summary: str, answer: str, **more: Any) -> dict[str, Any]:
    return {"summary": summary, "security": [{"bearer": []}], "responses": _answer(answer), **more}


def _body(schema: str) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": _REF + schema}}}
    return {"requestBody": {"required": True, "content": content}}


def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(_TYPES, ref_template=_REF + "{name}")
    place = _operation(
        "Place an order (the same client_order_id again: that order)",
        "OrderAnswer",
        **_body("PlaceBody"),
    )
    place["responses"]["201"] = place["responses"]["200"]
    deposit = _operation(
        "Deposit paper money (where allowed): the account's balances after it",
        "Balances",
        **_body("DepositBody"),
    )
    deposit["responses"]["201"] = deposit["responses"].pop("200")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ganntec trading API", "version": "1"},
        "paths": {
            "/trading/v1/orders": {
                "post": place,
                "get": _operation(
                    "The account's orders, oldest first",
                    "OrdersPage",
                    parameters=[
                        *_PAGE,
                        {"name": "open", "in": "query", "schema": {"type": "boolean"}},
                    ],
                ),
            },
            "/trading/v1/orders/{order_id}": {
                "get": _operation("One order", "OrderAnswer", parameters=_ORDER_ID),
                "delete": _operation("Cancel an order", "OrderAnswer", parameters=_ORDER_ID),
                "patch": _operation(
                    "Amend an order", "OrderAnswer", parameters=_ORDER_ID, **_body("AmendBody")
                ),
            },
            "/trading/v1/fills": {
                "get": _operation("The account's fills", "FillsPage", parameters=_PAGE)
            },
            "/trading/v1/positions": {"get": _operation("The account's positions", "Positions")},
            "/trading/v1/balances": {"get": _operation("The account's balances", "Balances")},
            "/trading/v1/deposits": {"post": deposit},
            "/trading/v1/events": {
                "get": _operation(
                    "The account's events, its audit trail", "EventsPage", parameters=_PAGE
                )
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }

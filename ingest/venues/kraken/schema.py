"""Kraken Spot WebSocket v2 messages this feed reads and writes, as msgspec structs.

Kraken v2 sends two families of JSON objects: channel messages, named by ``channel``
(``trade``, ``heartbeat``, ``status``), and answers to requests, named by ``method``
(``subscribe``, ``unsubscribe``, ``pong``). :class:`Kind` reads just those two names, so that
the frame can then be decoded as exactly one of the structs below. Unknown fields are ignored
(Kraken adds fields over time); missing or mistyped ones are errors naming the field.

Prices and quantities are JSON numbers in v2. They decode straight into
:class:`~decimal.Decimal` from their text (msgspec does this for ``Decimal`` fields), never
through a binary float, so ``0.1`` stays exactly ``0.1``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec


class Kind(msgspec.Struct, frozen=True):
    """The names that say which message a frame is (and an ``error`` Kraken may send alone,
    such as a rate limit)."""

    channel: str | None = None
    method: str | None = None
    error: str | None = None


# -- channel messages -------------------------------------------------------------------------


class Trade(msgspec.Struct, frozen=True):
    """One trade. ``side`` is the taker's; ``trade_id`` numbers the book's trades without
    holes; ``timestamp`` is RFC 3339 (``2023-09-25T07:49:36.925603Z``)."""

    symbol: str
    side: Literal["buy", "sell"]
    price: Decimal
    qty: Decimal
    ord_type: str
    trade_id: int
    timestamp: str


class TradeMessage(msgspec.Struct, frozen=True):
    """``{"channel": "trade", "type": "snapshot" | "update", "data": [trade, ...]}``.

    The snapshot (up to the 50 latest trades) comes once after subscribing, when asked for.
    """

    channel: Literal["trade"]
    type: Literal["snapshot", "update"]
    data: list[Trade]


class LooseTradeMessage(msgspec.Struct, frozen=True):
    """A trade message whose trades are left undecoded, to sort good trades from bad ones."""

    channel: Literal["trade"]
    type: Literal["snapshot", "update"]
    data: list[msgspec.Raw]


class Heartbeat(msgspec.Struct, frozen=True):
    """``{"channel": "heartbeat"}``: about once a second while a subscription is quiet."""

    channel: Literal["heartbeat"]


class Status(msgspec.Struct, frozen=True):
    """The engine's state: ``online``, ``cancel_only``, ``post_only`` or ``maintenance``."""

    system: str
    api_version: str | None = None
    connection_id: int | None = None
    version: str | None = None


class StatusMessage(msgspec.Struct, frozen=True):
    """``{"channel": "status", "type": "update", "data": [status]}``: sent on connecting and
    when the engine's state changes."""

    channel: Literal["status"]
    type: str
    data: list[Status]


# -- answers to requests ----------------------------------------------------------------------


class SubscriptionResult(msgspec.Struct, frozen=True):
    """What a successful (un)subscription echoes: one per symbol."""

    channel: str
    symbol: str | None = None
    snapshot: bool | None = None
    warnings: list[str] | None = None


class SubscribeAck(msgspec.Struct, frozen=True):
    """``{"method": "subscribe", "success": true, "result": {...}, "req_id": 1, ...}``, or
    with ``"success": false`` and an ``error`` (e.g. an unknown pair), for one symbol."""

    method: Literal["subscribe", "unsubscribe"]
    success: bool
    result: SubscriptionResult | None = None
    error: str | None = None
    symbol: str | None = None
    req_id: int | None = None
    time_in: str | None = None
    time_out: str | None = None


class Pong(msgspec.Struct, frozen=True):
    """``{"method": "pong", "req_id": 7, "time_in": ..., "time_out": ...}``: answers
    :class:`Ping`."""

    method: Literal["pong"]
    req_id: int | None = None
    success: bool | None = None
    error: str | None = None
    time_in: str | None = None
    time_out: str | None = None


# -- requests -------------------------------------------------------------------------------


class SubscribeParams(msgspec.Struct, frozen=True):
    channel: str
    symbol: list[str]
    snapshot: bool


class SubscribeRequest(msgspec.Struct, frozen=True):
    """``{"method": "subscribe", "params": {"channel": "trade", "symbol": [...],
    "snapshot": true}, "req_id": 1}``."""

    method: Literal["subscribe"]
    params: SubscribeParams
    req_id: int


class Ping(msgspec.Struct, frozen=True):
    """``{"method": "ping", "req_id": 7}``: an application-level ping."""

    method: Literal["ping"]
    req_id: int

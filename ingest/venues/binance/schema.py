"""Binance spot WebSocket messages, as msgspec structs: the venue's own names, checked on decode.

Field names are Binance's one-letter keys (``rename`` maps them to readable attributes), so a
decode error names the venue field, e.g. ``Expected `int` >= 0 - at `$.data.a```. Trade
events are tagged by their event type ``e``: a decoder for :class:`AggTrade` refuses a
``trade`` event, which lets the protocol tell "another kind of event" from "a broken one".

Prices and quantities stay the decimal strings Binance sends: the protocol turns them into
exact :class:`~decimal.Decimal` values and refuses, by name, text that is not a positive
number (a JSON number in their place is a decode error: Binance documents strings).
Unknown keys are ignored: Binance adds fields without notice (``M``, "ignore", is one).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

TradeId = Annotated[int, msgspec.Meta(ge=0)]
"""A non-negative trade id (aggregate, first, last or raw trade id)."""


class AggTrade(
    msgspec.Struct,
    tag_field="e",
    tag="aggTrade",
    frozen=True,
    rename={
        "event_time": "E",
        "symbol": "s",
        "agg_id": "a",
        "price": "p",
        "quantity": "q",
        "first_id": "f",
        "last_id": "l",
        "trade_time": "T",
        "buyer_is_maker": "m",
    },
):
    """One ``<symbol>@aggTrade`` event: the fills of one taker order at one price.

    ``agg_id`` numbers a symbol's aggregate trades 1, 2, 3, ... without holes; the event covers
    raw trades ``first_id..last_id``. ``trade_time`` is milliseconds since the epoch (or
    microseconds when the connection asked for ``timeUnit=MICROSECOND``).
    """

    event_time: int
    symbol: str
    agg_id: TradeId
    price: str
    quantity: str
    first_id: TradeId
    last_id: TradeId
    trade_time: int
    buyer_is_maker: bool


class Trade(
    msgspec.Struct,
    tag_field="e",
    tag="trade",
    frozen=True,
    rename={
        "event_time": "E",
        "symbol": "s",
        "trade_id": "t",
        "price": "p",
        "quantity": "q",
        "trade_time": "T",
        "buyer_is_maker": "m",
    },
):
    """One ``<symbol>@trade`` event: a single raw trade (one buyer, one seller)."""

    event_time: int
    symbol: str
    trade_id: TradeId
    price: str
    quantity: str
    trade_time: int
    buyer_is_maker: bool


class CombinedAggTrade(msgspec.Struct, frozen=True):
    """An aggTrade event as a combined-stream connection wraps it."""

    stream: str
    data: AggTrade


class CombinedTrade(msgspec.Struct, frozen=True):
    """A trade event as a combined-stream connection wraps it."""

    stream: str
    data: Trade


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """A live-subscription request such as ``SUBSCRIBE``.

    ``params`` are stream names; ``id`` (a 64-bit integer here) comes back in the answer,
    ``{"result": null, "id": ...}`` on success or ``{"code": ..., "msg": ..., "id": ...}``.
    """

    method: str
    params: list[str]
    id: int

"""Coinbase Exchange WebSocket feed messages, as msgspec structs tagged by their ``type``.

One decoder reads every message kind the ``matches`` and ``heartbeat`` channels send; a
message of another ``type`` fails the tagged union, and the protocol then ignores it (the
venue documents that new types may appear at any time). Prices and sizes stay the decimal
strings Coinbase sends (the protocol makes exact decimals of them); ``time`` stays text, read
exactly to the nanosecond by :func:`ingest.venues.fields.rfc3339_to_ns` (msgspec's datetime
would round past microseconds). Unknown keys are ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class Match(msgspec.Struct, tag_field="type", tag="match", frozen=True):
    """A trade between a resting (maker) order and an incoming (taker) one.

    ``side`` is the MAKER's side: ``sell`` means the taker bought. ``trade_id`` numbers a
    product's trades without holes. ``sequence`` numbers every message of the product across
    all channels, so on ``matches`` alone its holes are normal. The order ids are not used.
    """

    trade_id: NonNegative
    sequence: NonNegative
    time: str
    product_id: str
    size: str
    price: str
    side: Literal["buy", "sell"]
    maker_order_id: str = ""
    taker_order_id: str = ""


class LastMatch(Match, tag="last_match", frozen=True):
    """The product's latest trade, sent once, first, after subscribing to ``matches``."""


class Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat", frozen=True):
    """Once a second per product on the ``heartbeat`` channel, trades or not."""

    sequence: NonNegative
    last_trade_id: NonNegative
    product_id: str
    time: str


class Channel(msgspec.Struct, frozen=True):
    """One channel of a ``subscriptions`` answer and the products it now carries."""

    name: str
    product_ids: list[str] = []


class Subscriptions(msgspec.Struct, tag_field="type", tag="subscriptions", frozen=True):
    """The answer to ``subscribe``: every channel the connection now receives."""

    channels: list[Channel | str] = []


class Error(msgspec.Struct, tag_field="type", tag="error", frozen=True):
    """A failure, e.g. a refused subscription; Coinbase may close the connection after it."""

    message: str
    reason: str = ""


Message = Match | LastMatch | Heartbeat | Subscriptions | Error
KNOWN_TYPES = frozenset({"match", "last_match", "heartbeat", "subscriptions", "error"})


class Subscribe(msgspec.Struct, frozen=True, kw_only=True):
    """The request naming products and channels; the first one must come within 5 seconds."""

    type: str
    product_ids: list[str]
    channels: list[str]

"""Coinbase Exchange market data feed, sans-I/O: subscribe frames and frames to ticks.

One URL for everything (``wss://ws-feed.exchange.coinbase.com``); within 5 seconds of
connecting the client sends ``{"type": "subscribe", "product_ids": [...], "channels":
["matches", "heartbeat"]}`` and gets a ``subscriptions`` message back, then per product a
``last_match`` (the latest trade, sent again on every subscription: a snapshot that may
repeat a trade already seen), ``match`` messages and a ``heartbeat`` every second.

Tick mapping: instrument ``COINBASE:<PRODUCT-ID>`` (``COINBASE:BTC-USD``); trade id
``trade_id``; ``ts_event`` from ``time`` (RFC 3339, microseconds, read exactly); ``side`` is
the maker's side, so the aggressor is the opposite (``"side": "sell"`` is a buy).

Gaps: ``trade_id`` numbers a product's trades without holes, so the runtime detects gaps by
trade-id continuity. ``sequence`` does NOT serve: it numbers every message of the product
across all channels (order-book messages too), so on ``matches`` alone it skips all the time.
Coinbase warns that it may drop ``matches`` messages. A heartbeat says the connection is alive
when a product is quiet, and its ``last_trade_id`` (the product's latest trade) becomes a
:class:`~ingest.venues.base.LatestTrade`: one beyond the highest trade id seen tells a
dropped trade from a quiet product at once, without waiting for the next trade to show the
hole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import ClassVar, Final

import msgspec

from core.ticks import Side, Tick
from ingest.venues.base import (
    BadFrame,
    KnownSymbols,
    LatestTrade,
    Parsed,
    normalised,
    websocket_url,
)
from ingest.venues.coinbase.schema import (
    KNOWN_TYPES,
    Error,
    Heartbeat,
    LastMatch,
    Match,
    Message,
    Subscribe,
)
from ingest.venues.fields import (
    BAD_FIELD,
    BAD_TICK,
    BAD_TIME,
    NOT_JSON,
    UNKNOWN_SHAPE,
    UNKNOWN_SYMBOL,
    DecimalCache,
    FieldError,
    json_kind,
    rfc3339_to_ns,
)

CHANNELS: Final = ("matches", "heartbeat")

_PRODUCT = re.compile(r"[A-Z0-9]{1,16}-[A-Z0-9]{1,16}")
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Message)


def normalise_product(product_id: str) -> str:
    """``btc-usd`` or ``BTC-USD`` → ``BTC-USD``; ``ValueError`` for anything else."""
    return normalised(product_id, _PRODUCT, "a Coinbase product id looks like BTC-USD")


class CoinbaseExchange:
    """The ``matches`` and ``heartbeat`` channels of some products (one per connection).

    Products the instance is built with or asked to connect or subscribe to are the known
    ones; a trade of any other product is a bad frame.
    """

    name: ClassVar[str] = "coinbase"
    default_url: ClassVar[str] = "wss://ws-feed.exchange.coinbase.com"
    contiguous_trade_ids: ClassVar[bool] = True
    stale_after: ClassVar[float | None] = 5.0
    """A heartbeat per product every second: five seconds without any frame is a dead feed."""

    def __init__(self, products: Iterable[str] = ()) -> None:
        self._symbols = KnownSymbols("COINBASE", normalise_product)
        self._decimal = DecimalCache()
        self._symbols.learn(products)

    # -- the connection ------------------------------------------------------------------

    def instrument(self, symbol: str) -> str:
        return self._symbols.instrument(symbol)

    def connect_url(self, base_url: str, symbols: Sequence[str]) -> str:
        self._symbols.learn(symbols)
        return websocket_url(base_url)

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        products = self._symbols.learn(symbols)
        if not products:
            raise ValueError("a Coinbase subscription needs at least one product id")
        request = Subscribe(type="subscribe", product_ids=products, channels=list(CHANNELS))
        return [_ENCODER.encode(request).decode()]

    # -- frames from the venue -----------------------------------------------------------

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        try:
            message = _DECODER.decode(frame)
        except msgspec.ValidationError as exc:  # (a subclass of DecodeError: first)
            return _other(frame, exc)
        except msgspec.DecodeError as exc:
            return _bad(NOT_JSON, f"not JSON: {exc}", frame)
        if isinstance(message, Match):
            return self._trade(message, frame, recv_ns)
        if isinstance(message, Heartbeat):
            return self._heartbeat(message, frame)
        if isinstance(message, Error):
            reason = f" ({message.reason})" if message.reason else ""
            return Parsed(error=f"coinbase error: {message.message}{reason}")
        return Parsed(alive=True)  # subscriptions

    def _heartbeat(self, heartbeat: Heartbeat, frame: str | bytes) -> Parsed:
        instrument = self._symbols.get(heartbeat.product_id)
        if instrument is None:
            detail = f"product_id {heartbeat.product_id!r} is not subscribed"
            return _bad(UNKNOWN_SYMBOL, detail, frame)
        try:
            ts_event = rfc3339_to_ns(heartbeat.time)
        except ValueError as exc:
            return _bad(BAD_TIME, f"time {heartbeat.time!r} {exc}", frame)
        latest = LatestTrade(instrument, heartbeat.last_trade_id, ts_event)
        return Parsed(latest=[latest], alive=True)

    def _trade(self, match: Match, frame: str | bytes, recv_ns: int) -> Parsed:
        instrument = self._symbols.get(match.product_id)
        if instrument is None:
            detail = f"product_id {match.product_id!r} is not subscribed"
            return _bad(UNKNOWN_SYMBOL, detail, frame)
        try:
            price = self._decimal(match.price, "price")
            size = self._decimal(match.size, "size")
        except FieldError as problem:
            return _bad(problem.reason, problem.detail, frame)
        try:
            ts_event = rfc3339_to_ns(match.time)
        except ValueError as exc:
            return _bad(BAD_TIME, f"time {match.time!r} {exc}", frame)
        try:
            tick = Tick(
                instrument,
                match.trade_id,
                price,
                size,
                Side.SELL if match.side == "buy" else Side.BUY,
                ts_event,
                recv_ns,
            )
        except ValueError as exc:
            return _bad(BAD_TICK, str(exc), frame)
        return Parsed(ticks=[tick], snapshot=isinstance(match, LastMatch))


def _other(frame: str | bytes, error: msgspec.ValidationError) -> Parsed:
    """A frame the message union refused: an unknown type (ignored) or a broken message."""
    try:
        message = msgspec.json.decode(frame)
    except msgspec.DecodeError as exc:  # the typed decoder can fail before the end of a frame
        return _bad(NOT_JSON, f"not JSON: {exc}", frame)
    if not isinstance(message, dict):
        return _bad(UNKNOWN_SHAPE, f"expected a JSON object, got {json_kind(message)}", frame)
    kind = message.get("type")
    if not isinstance(kind, str):
        return _bad(UNKNOWN_SHAPE, "no message type 'type'", frame)
    if kind not in KNOWN_TYPES:
        return Parsed(alive=True)  # new message types may appear: ignore them
    return _bad(BAD_FIELD, f"{kind} message: {error}", frame)


def _bad(reason: str, detail: str, frame: str | bytes) -> Parsed:
    return Parsed(bad=[BadFrame.of(reason, detail, frame)])

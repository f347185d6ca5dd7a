"""Kraken Spot WebSocket v2, ``trade`` channel, sans-I/O: subscribe frames, frames to ticks.

One connection to ``wss://ws.kraken.com/v2`` carries every symbol; the feed subscribes with
``{"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"],
"snapshot": true}, "req_id": 1}``. Kraken answers with a ``status`` message on connecting, one
acknowledgement per symbol, a ``snapshot`` of the latest trades (at most 50) and then
``update`` messages; a ``heartbeat`` arrives about once a second while nothing else does.

Tick mapping: instrument ``KRAKEN:<symbol>`` (the v2 symbol, ``KRAKEN:BTC/USD``); trade id
``trade_id`` (numbered per book without holes, so the runtime detects gaps by continuity);
price ``price``, size ``qty``, both exact; side ``buy``/``sell`` (the taker's);
``ts_event`` from ``timestamp`` (RFC 3339, exact to the nanosecond); ``ts_recv`` the time
the frame arrived. The snapshot is flagged, so that the runtime knows its trades may repeat.

A bad trade inside a message is refused alone; the good ones beside it still count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import ClassVar, Final

import msgspec

from core.ticks import Side, Tick
from ingest.venues.base import BadFrame, KnownSymbols, Parsed, normalised, websocket_url
from ingest.venues.fields import (
    BAD_FIELD,
    BAD_TICK,
    BAD_TIME,
    NOT_JSON,
    UNKNOWN_SHAPE,
    UNKNOWN_SYMBOL,
    FieldError,
    positive_decimal,
    rfc3339_to_ns,
)
from ingest.venues.kraken.schema import (
    Heartbeat,
    Kind,
    LooseTradeMessage,
    Ping,
    Pong,
    StatusMessage,
    SubscribeAck,
    SubscribeParams,
    SubscribeRequest,
    Trade,
    TradeMessage,
)

_SYMBOL: Final = re.compile(r"[A-Z0-9]{1,16}/[A-Z0-9]{1,16}")
_SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}

_KIND = msgspec.json.Decoder(Kind)
_TRADES = msgspec.json.Decoder(TradeMessage)
_LOOSE_TRADES = msgspec.json.Decoder(LooseTradeMessage)
_TRADE = msgspec.json.Decoder(Trade)
_HEARTBEAT = msgspec.json.Decoder(Heartbeat)
_STATUS = msgspec.json.Decoder(StatusMessage)
_ACK = msgspec.json.Decoder(SubscribeAck)
_PONG = msgspec.json.Decoder(Pong)
_ENCODER = msgspec.json.Encoder()


def normalise_symbol(symbol: str) -> str:
    """``btc/usd`` or ``BTC/USD`` → ``BTC/USD``; ``ValueError`` for anything else."""
    return normalised(symbol, _SYMBOL, "a Kraken v2 symbol looks like BTC/USD (base/quote)")


class KrakenSpot:
    """The v2 ``trade`` channel of some symbols (one instance per connection).

    Symbols the instance is built with or asked to subscribe to are the known ones; a trade
    of any other symbol is a bad frame. ``snapshot`` asks Kraken for its latest trades on
    every (re)subscription, which lets a reconnect recover trades it would have missed.
    """

    name: ClassVar[str] = "kraken"
    default_url: ClassVar[str] = "wss://ws.kraken.com/v2"
    contiguous_trade_ids: ClassVar[bool] = True
    stale_after: ClassVar[float | None] = 5.0
    """A heartbeat about every second when nothing else is sent: five silent seconds is a
    dead feed."""

    def __init__(self, symbols: Iterable[str] = (), *, snapshot: bool = True) -> None:
        self.snapshot = snapshot
        self._symbols = KnownSymbols("KRAKEN", normalise_symbol)
        self._next_req_id = 1
        self._symbols.learn(symbols)

    # -- the connection --------------------------------------------------------------------

    def instrument(self, symbol: str) -> str:
        return self._symbols.instrument(symbol)

    def connect_url(self, base_url: str, symbols: Sequence[str]) -> str:
        self._symbols.learn(symbols)
        return websocket_url(base_url)

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        params = SubscribeParams(
            channel="trade", symbol=self._symbols.learn(symbols), snapshot=self.snapshot
        )
        request = SubscribeRequest(method="subscribe", params=params, req_id=self._req_id())
        return [_ENCODER.encode(request).decode()]

    def ping(self) -> str:
        """An application-level ping frame (Kraken answers with a ``pong``)."""
        return _ENCODER.encode(Ping(method="ping", req_id=self._req_id())).decode()

    def _req_id(self) -> int:
        req_id, self._next_req_id = self._next_req_id, self._next_req_id + 1
        return req_id

    # -- frames from the venue -------------------------------------------------------------

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        try:
            return self._trades(_TRADES.decode(frame), frame, recv_ns)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._other(frame, recv_ns)

    def _trades(self, message: TradeMessage, frame: str | bytes, recv_ns: int) -> Parsed:
        parsed = Parsed(snapshot=message.type == "snapshot")
        for index, trade in enumerate(message.data):
            self._add(parsed, trade, index, frame, recv_ns)
        return parsed

    def _add(
        self, parsed: Parsed, trade: Trade, index: int, frame: str | bytes, recv_ns: int
    ) -> None:
        where = f"data[{index}]"
        instrument = self._symbols.get(trade.symbol)
        if instrument is None:
            detail = f"{where}.symbol {trade.symbol!r} is not subscribed"
            parsed.bad.append(BadFrame.of(UNKNOWN_SYMBOL, detail, frame))
            return
        try:
            ts_event = rfc3339_to_ns(trade.timestamp)
        except ValueError as exc:
            detail = f"{where}.timestamp {trade.timestamp!r} {exc}"
            parsed.bad.append(BadFrame.of(BAD_TIME, detail, frame))
            return
        try:
            price = positive_decimal(str(trade.price), f"{where}.price")
            size = positive_decimal(str(trade.qty), f"{where}.qty")
            tick = Tick(
                instrument, trade.trade_id, price, size, _SIDES[trade.side], ts_event, recv_ns
            )
        except FieldError as problem:
            parsed.bad.append(BadFrame.of(problem.reason, problem.detail, frame))
            return
        except ValueError as exc:
            parsed.bad.append(BadFrame.of(BAD_TICK, f"{where}: {exc}", frame))
            return
        parsed.ticks.append(tick)

    def _other(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Everything but a well-formed trade message: sorted out by its names."""
        try:
            kind = _KIND.decode(frame)
        except msgspec.ValidationError as exc:  # a subclass of DecodeError: first
            return _bad(UNKNOWN_SHAPE, f"not a Kraken v2 message: {exc}", frame)
        except msgspec.DecodeError as exc:
            return _bad(NOT_JSON, f"not JSON: {exc}", frame)
        try:
            if kind.channel == "trade":
                return self._loose_trades(frame, recv_ns)
            if kind.channel == "heartbeat":
                _HEARTBEAT.decode(frame)
                return Parsed(alive=True)
            if kind.channel == "status":
                _STATUS.decode(frame)
                return Parsed(alive=True)
            if kind.method in ("subscribe", "unsubscribe"):
                return _acknowledged(_ACK.decode(frame))
            if kind.method == "pong":
                _PONG.decode(frame)
                return Parsed(alive=True)
        except msgspec.ValidationError as exc:
            name = kind.channel or kind.method
            return _bad(BAD_FIELD, f"{name} message: {exc}", frame)
        if kind.channel is not None:
            detail = f"channel {kind.channel!r} is not one this feed subscribes to"
        elif kind.method is not None:
            detail = f"method {kind.method!r} answers no request this feed sends"
        elif kind.error is not None:
            return Parsed(error=f"kraken reported: {kind.error}")
        else:
            detail = "neither a channel message nor an answer (no 'channel' or 'method')"
        return _bad(UNKNOWN_SHAPE, detail, frame)

    def _loose_trades(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """A trade message with bad trades: keep the good ones, refuse each bad one."""
        message = _LOOSE_TRADES.decode(frame)
        parsed = Parsed(snapshot=message.type == "snapshot")
        for index, raw in enumerate(message.data):
            try:
                trade = _TRADE.decode(raw)
            except msgspec.ValidationError as exc:
                detail = f"trade message: {str(exc).replace('`$', f'`$.data[{index}]')}"
                parsed.bad.append(BadFrame.of(BAD_FIELD, detail, frame))
                continue
            self._add(parsed, trade, index, frame, recv_ns)
        return parsed


def _acknowledged(ack: SubscribeAck) -> Parsed:
    if ack.success:
        return Parsed(alive=True)
    symbol = ack.symbol or (ack.result.symbol if ack.result else None) or "?"
    return Parsed(error=f"kraken refused to {ack.method} {symbol}: {ack.error or 'no reason'}")


def _bad(reason: str, detail: str, frame: str | bytes) -> Parsed:
    return Parsed(bad=[BadFrame.of(reason, detail, frame)])

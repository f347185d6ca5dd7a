"""Binance spot market streams, sans-I/O: URLs, ``SUBSCRIBE`` frames, frames to ticks.

Streams: ``<symbol>@aggTrade`` (default) or ``<symbol>@trade``, symbols in lower case in
stream names. A connection either names its streams in the URL (``/stream?streams=a/b``,
events wrapped as ``{"stream": ..., "data": ...}``; or ``/ws/<stream>`` for one raw stream)
or opens ``/stream`` (``/ws``) bare and sends ``{"method": "SUBSCRIBE", "params": [...],
"id": n}``, answered by ``{"result": null, "id": n}`` or ``{"code": ..., "msg": ...}``.

Tick mapping: instrument ``BINANCE:<SYMBOL>``; trade id ``a`` (aggTrade) or ``t`` (trade),
both numbered per symbol without holes, so the runtime detects gaps by trade-id continuity;
``trades`` is ``l - f + 1`` for an aggTrade, 1 for a trade; ``ts_event`` from the trade time
``T``; ``m`` (buyer is maker) true means the aggressor sold. ``T`` is milliseconds unless the
URL asked for ``timeUnit=MICROSECOND``; either is read by magnitude (below ``10**13`` is
milliseconds), the rule of the aggTrades dumps, so a venue that ignores the parameter is
still read right. Binance keeps a connection alive with protocol-level pings, which the
WebSocket library answers: there are no application pings or heartbeats, and a quiet symbol
sends nothing at all (so silence alone does not prove a dead connection here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import ClassVar, Final, Literal

import msgspec

from core.ticks import Side, Tick
from ingest.venues.base import BadFrame, KnownSymbols, Parsed, normalised, websocket_url
from ingest.venues.binance.schema import (
    AggTrade,
    CombinedAggTrade,
    CombinedTrade,
    Request,
    Trade,
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
)

StreamKind = Literal["aggTrade", "trade"]
TimeUnit = Literal["ms", "us"]
SubscribeWith = Literal["url", "message"]

MAX_STREAMS: Final = 1024
"""Binance serves at most 1024 streams on one connection."""
MS_BELOW: Final = 10**13
"""A trade time below this is milliseconds (until the year 2286), else microseconds."""
US_BELOW: Final = 10**16

_SYMBOL = re.compile(r"[A-Z0-9]{2,32}")
_ENCODER = msgspec.json.Encoder()


def normalise_symbol(symbol: str) -> str:
    """``btcusdt`` or ``BTCUSDT`` → ``BTCUSDT``; ``ValueError`` for anything else."""
    return normalised(symbol, _SYMBOL, "a Binance symbol is 2 to 32 letters or digits")


class BinanceSpot:
    """The Binance spot trade streams of some symbols (one instance per connection).

    ``stream`` picks the event kind, ``combined`` the wrapped (``/stream``) or raw (``/ws``)
    form, ``subscribe_with`` whether the URL names the streams or a ``SUBSCRIBE`` frame does
    (needed for a raw connection to several symbols), ``time_unit`` what ``T`` the URL asks
    for. Symbols the instance is built with or asked to connect or subscribe to are the
    known ones; a trade of any other symbol is a bad frame.
    """

    name: ClassVar[str] = "binance"
    default_url: ClassVar[str] = "wss://stream.binance.com:9443"
    contiguous_trade_ids: ClassVar[bool] = True
    stale_after: ClassVar[float | None] = None
    """No application heartbeat: a quiet symbol sends nothing, so silence proves nothing;
    WebSocket pings (Binance's every 20 s, and ours) tell a dead connection."""

    def __init__(
        self,
        symbols: Iterable[str] = (),
        *,
        stream: StreamKind = "aggTrade",
        combined: bool = True,
        subscribe_with: SubscribeWith = "url",
        time_unit: TimeUnit = "ms",
    ) -> None:
        if stream not in ("aggTrade", "trade"):
            raise ValueError(f"stream must be 'aggTrade' or 'trade', got {stream!r}")
        if subscribe_with not in ("url", "message"):
            raise ValueError(f"subscribe_with must be 'url' or 'message', got {subscribe_with!r}")
        if time_unit not in ("ms", "us"):
            raise ValueError(f"time_unit must be 'ms' or 'us', got {time_unit!r}")
        self.stream = stream
        self.combined = combined
        self.subscribe_with = subscribe_with
        self.time_unit = time_unit
        self._symbols = KnownSymbols("BINANCE", normalise_symbol)
        self._decimal = DecimalCache()
        self._next_id = 1
        event: type[AggTrade | Trade] = AggTrade if stream == "aggTrade" else Trade
        wrapped: type[CombinedAggTrade | CombinedTrade] = (
            CombinedAggTrade if stream == "aggTrade" else CombinedTrade
        )
        self._raw_decoder = msgspec.json.Decoder(event)
        self._combined_decoder = msgspec.json.Decoder(wrapped)
        self._learn(symbols)

    # -- the connection ------------------------------------------------------------------

    def instrument(self, symbol: str) -> str:
        return self._symbols.instrument(symbol)

    def connect_url(self, base_url: str, symbols: Sequence[str]) -> str:
        names = self._learn(symbols)
        if not names:
            raise ValueError("a Binance connection needs at least one symbol")
        base = _base(base_url)
        unit = "timeUnit=MICROSECOND" if self.time_unit == "us" else ""
        if self.subscribe_with == "message":
            path = f"{base}/stream" if self.combined else f"{base}/ws"
            return f"{path}?{unit}" if unit else path
        if self.combined:
            url = f"{base}/stream?streams={'/'.join(names)}"
            return f"{url}&{unit}" if unit else url
        if len(names) != 1:
            raise ValueError(
                "a raw stream URL (/ws/<stream>) carries one stream; use combined=True "
                "or subscribe_with='message' for several symbols"
            )
        url = f"{base}/ws/{names[0]}"
        return f"{url}?{unit}" if unit else url

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        names = self._learn(symbols)
        if self.subscribe_with == "url":
            return []
        if not names:
            raise ValueError("a Binance subscription needs at least one symbol")
        request = Request(method="SUBSCRIBE", params=names, id=self._next_id)
        self._next_id += 1
        return [_ENCODER.encode(request).decode()]

    def _learn(self, symbols: Iterable[str]) -> list[str]:
        names = [self._stream_name(symbol) for symbol in self._symbols.learn(symbols)]
        if len(self._symbols) > MAX_STREAMS:
            raise ValueError(f"Binance serves at most {MAX_STREAMS} streams on one connection")
        return names

    def _stream_name(self, symbol: str) -> str:
        return f"{symbol.lower()}@{self.stream}"

    # -- frames from the venue -----------------------------------------------------------

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        try:
            if self.combined:
                wrapper = self._combined_decoder.decode(frame)
                return self._trade(wrapper.data, wrapper.stream, frame, recv_ns)
            return self._trade(self._raw_decoder.decode(frame), None, frame, recv_ns)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._other(frame, recv_ns)

    def _trade(
        self, event: AggTrade | Trade, stream: str | None, frame: str | bytes, recv_ns: int
    ) -> Parsed:
        instrument = self._symbols.get(event.symbol)
        if instrument is None:
            return _bad(UNKNOWN_SYMBOL, f"s (symbol) {event.symbol!r} is not subscribed", frame)
        if stream is not None and stream != self._stream_name(event.symbol):
            detail = f"stream {stream!r} does not carry {self.stream} events of {event.symbol}"
            return _bad(BAD_FIELD, detail, frame)
        trade_time = event.trade_time
        if not 0 < trade_time < US_BELOW:
            detail = f"T (trade time) {trade_time} is not epoch milliseconds or microseconds"
            return _bad(BAD_TIME, detail, frame)
        if isinstance(event, AggTrade):
            if event.first_id > event.last_id:
                detail = f"f (first trade id) {event.first_id} is after l {event.last_id}"
                return _bad(BAD_FIELD, detail, frame)
            trade_id, trades = event.agg_id, event.last_id - event.first_id + 1
        else:
            trade_id, trades = event.trade_id, 1
        try:
            price = self._decimal(event.price, "p (price)")
            size = self._decimal(event.quantity, "q (quantity)")
        except FieldError as problem:
            return _bad(problem.reason, problem.detail, frame)
        try:
            tick = Tick(
                instrument,
                trade_id,
                price,
                size,
                Side.SELL if event.buyer_is_maker else Side.BUY,
                trade_time * (1_000_000 if trade_time < MS_BELOW else 1_000),
                recv_ns,
                trades,
            )
        except ValueError as exc:
            return _bad(BAD_TICK, str(exc), frame)
        return Parsed(ticks=[tick])

    def _other(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Everything but a well-formed trade of the configured form: sorted out slowly."""
        try:
            message = msgspec.json.decode(frame)
        except msgspec.DecodeError as exc:
            return _bad(NOT_JSON, f"not JSON: {exc}", frame)
        if not isinstance(message, dict):
            return _bad(UNKNOWN_SHAPE, f"expected a JSON object, got {json_kind(message)}", frame)
        if "code" in message or "error" in message:
            return Parsed(error=_error_text(message))
        if "result" in message and "id" in message:
            return Parsed(alive=True)  # a SUBSCRIBE (or other request) succeeded
        wrapped = "stream" in message or "data" in message
        payload = message.get("data") if wrapped else message
        if wrapped and not (isinstance(message.get("stream"), str) and isinstance(payload, dict)):
            detail = "a combined-stream frame needs a string 'stream' and an object 'data'"
            return _bad(UNKNOWN_SHAPE, detail, frame)
        assert isinstance(payload, dict)
        kind = payload.get("e")
        if not isinstance(kind, str):
            return _bad(UNKNOWN_SHAPE, "no event type 'e' and not a request answer", frame)
        if kind != self.stream:
            return Parsed(alive=True)  # another kind of event: not ours to read
        decoder = self._combined_decoder if wrapped else self._raw_decoder
        try:
            decoded = decoder.decode(frame)
        except msgspec.ValidationError as exc:
            return _bad(BAD_FIELD, f"{self.stream} event: {exc}", frame)
        if isinstance(decoded, (CombinedAggTrade, CombinedTrade)):
            return self._trade(decoded.data, decoded.stream, frame, recv_ns)
        return self._trade(decoded, None, frame, recv_ns)


def _base(base_url: str) -> str:
    return websocket_url(base_url).rstrip("/")


def _error_text(message: dict[str, object]) -> str:
    """``binance error 2: Invalid request ... (request 1)`` from either error form."""
    body = message.get("error")
    if not isinstance(body, dict):
        body = message
    text = f"binance error {body.get('code')}: {body.get('msg')}"
    request = message.get("id")
    return f"{text} (request {request})" if request is not None else text


def _bad(reason: str, detail: str, frame: str | bytes) -> Parsed:
    return Parsed(bad=[BadFrame.of(reason, detail, frame)])

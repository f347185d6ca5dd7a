"""Venue frames parsed into ticks: messages per second for each venue's trade schema.

Schemas: Binance ``aggTrade`` and ``trade`` (combined-stream frames), Coinbase ``match``,
Kraken v2 ``trade`` (one trade per message, prices as JSON numbers). Contenders, measured in
the same run on the same frames, each turning every frame into a checked :class:`Tick`:
- the venue protocol's ``parse`` (msgspec structs; what the live feeds run);
- baseline: ``json.loads`` and dict look-ups with the same checks, through the same helpers
  as that venue's protocol (exact positive decimals, cached where the protocol caches them;
  the same RFC 3339 reader), building the same ticks: only the decoding differs;
- msgspec decode alone (no checks, no ticks): what decoding costs, for reference.

Frames are built here from ticks (``bench`` does not import the test fakes): the shared
Binance aggTrades file looped (ids and times shifted each loop) when it is there, else (or
with ``--synthetic``) the synthetic generator.
Usage: ``python -m bench.venues [--messages N] [--repeat N] [--synthetic] [--smoke]``.
"""

from __future__ import annotations

import argparse
import json
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import msgspec

from bench.common import measure, print_table
from bench.engine import BINANCE_FILE, looped_binance
from core.numbers import scale_of
from core.ticks import Side, Tick
from ingest.synthetic import SyntheticFeed
from ingest.venues.base import VenueProtocol
from ingest.venues.binance import BinanceSpot
from ingest.venues.binance.protocol import StreamKind
from ingest.venues.binance.schema import CombinedAggTrade, CombinedTrade
from ingest.venues.coinbase import CoinbaseExchange
from ingest.venues.coinbase.schema import Message as CoinbaseMessage
from ingest.venues.fields import DecimalCache, positive_decimal, rfc3339_to_ns
from ingest.venues.kraken import KrakenSpot
from ingest.venues.kraken.schema import TradeMessage as KrakenTradeMessage

RECV = 1_767_300_000_000_000_000
BINANCE_SYMBOL = "BTCUSDT"
COINBASE_PRODUCT = "BTC-USD"
KRAKEN_SYMBOL = "BTC/USD"

_ENCODER = msgspec.json.Encoder()
_NUMBERS = msgspec.json.Encoder(decimal_format="number")


# -- frames ----------------------------------------------------------------------------------


def _text(value: Decimal, places: int = 8) -> str:
    return format(value, f".{places}f") if scale_of(value) <= places else format(value, "f")


def _rfc3339(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}Z" if fraction % 1_000 else f"{stamp}.{fraction // 1_000:06d}Z"


def binance_frames(ticks: Sequence[Tick], kind: str) -> list[str]:
    """Combined-stream ``aggTrade`` or ``trade`` events, ``T`` in milliseconds."""
    frames = []
    raw_id = 1
    stream = f"{BINANCE_SYMBOL.lower()}@{kind}"
    for tick in ticks:
        trade_time = tick.ts_event // 1_000_000
        event: dict[str, object] = {"e": kind, "E": trade_time + 3, "s": BINANCE_SYMBOL}
        event["a" if kind == "aggTrade" else "t"] = tick.trade_id
        event["p"], event["q"] = _text(tick.price), _text(tick.size)
        if kind == "aggTrade":
            event["f"], event["l"] = raw_id, raw_id + tick.trades - 1
            raw_id += tick.trades
        event.update(T=trade_time, m=tick.side is Side.SELL, M=True)
        frames.append(_ENCODER.encode({"stream": stream, "data": event}).decode())
    return frames


def coinbase_frames(ticks: Sequence[Tick]) -> list[str]:
    """``match`` messages; ``side`` is the maker's, sequence numbers skip as on the feed."""
    return [
        _ENCODER.encode(
            {
                "type": "match",
                "trade_id": tick.trade_id,
                "sequence": 3 * tick.trade_id,
                "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
                "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
                "time": _rfc3339(tick.ts_event),
                "product_id": COINBASE_PRODUCT,
                "size": _text(tick.size),
                "price": format(tick.price, "f"),
                "side": "sell" if tick.side is Side.BUY else "buy",
            }
        ).decode()
        for tick in ticks
    ]


def kraken_frames(ticks: Sequence[Tick]) -> list[str]:
    """v2 ``trade`` updates of one trade each; price and qty are JSON numbers (exact text)."""
    return [
        _NUMBERS.encode(
            {
                "channel": "trade",
                "type": "update",
                "data": [
                    {
                        "symbol": KRAKEN_SYMBOL,
                        "side": "buy" if tick.side is Side.BUY else "sell",
                        "price": tick.price,
                        "qty": tick.size,
                        "ord_type": "market",
                        "trade_id": tick.trade_id,
                        "timestamp": _rfc3339(tick.ts_event),
                    }
                ],
            }
        ).decode()
        for tick in ticks
    ]


# -- contenders ----------------------------------------------------------------------------


def via_protocol(protocol: VenueProtocol, frames: Sequence[str]) -> Iterator[Tick]:
    for frame in frames:
        parsed = protocol.parse(frame, RECV)
        if parsed.bad:
            raise ValueError(parsed.bad[0].detail)
        yield from parsed.ticks


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def binance_json(frames: Sequence[str], kind: str) -> Iterator[Tick]:
    """The baseline: ``json.loads``, then the protocol's checks by hand (with the same
    helpers: the decimal cache, the RFC 3339 reader), so that only the decoding differs."""
    instruments = {BINANCE_SYMBOL: f"BINANCE:{BINANCE_SYMBOL}"}
    decimal = DecimalCache()
    id_key = "a" if kind == "aggTrade" else "t"
    for frame in frames:
        message = json.loads(frame)
        data = message["data"]
        if data["e"] != kind or not isinstance(message["stream"], str):
            raise ValueError("not a trade event")
        instrument = instruments[_str(data["s"], "s")]
        trade_time = _int(data["T"], "T")
        trades = _int(data["l"], "l") - _int(data["f"], "f") + 1 if kind == "aggTrade" else 1
        maker = data["m"]
        if not isinstance(maker, bool):
            raise ValueError("m must be a boolean")
        yield Tick(
            instrument,
            _int(data[id_key], id_key),
            decimal(_str(data["p"], "p"), "p (price)"),
            decimal(_str(data["q"], "q"), "q (quantity)"),
            Side.SELL if maker else Side.BUY,
            trade_time * 1_000_000,
            RECV,
            trades,
        )


def coinbase_json(frames: Sequence[str]) -> Iterator[Tick]:
    instruments = {COINBASE_PRODUCT: f"COINBASE:{COINBASE_PRODUCT}"}
    decimal = DecimalCache()
    sides = {"buy": Side.SELL, "sell": Side.BUY}
    for frame in frames:
        message = json.loads(frame)
        if message["type"] != "match":
            raise ValueError("not a match")
        _int(message["sequence"], "sequence")
        yield Tick(
            instruments[_str(message["product_id"], "product_id")],
            _int(message["trade_id"], "trade_id"),
            decimal(_str(message["price"], "price"), "price"),
            decimal(_str(message["size"], "size"), "size"),
            sides[message["side"]],
            rfc3339_to_ns(_str(message["time"], "time")),
            RECV,
        )


def kraken_json(frames: Sequence[str]) -> Iterator[Tick]:
    instruments = {KRAKEN_SYMBOL: f"KRAKEN:{KRAKEN_SYMBOL}"}
    sides = {"buy": Side.BUY, "sell": Side.SELL}
    for frame in frames:
        message = json.loads(frame, parse_float=Decimal, parse_int=Decimal)
        if message["channel"] != "trade" or message["type"] not in ("snapshot", "update"):
            raise ValueError("not a trade message")
        for trade in message["data"]:
            trade_id = trade["trade_id"]
            if not isinstance(trade_id, Decimal) or trade_id != int(trade_id) or trade_id < 0:
                raise ValueError("trade_id must be a non-negative integer")
            _str(trade["ord_type"], "ord_type")
            yield Tick(
                instruments[_str(trade["symbol"], "symbol")],
                int(trade_id),
                positive_decimal(str(trade["price"]), "price"),
                positive_decimal(str(trade["qty"]), "qty"),
                sides[trade["side"]],
                rfc3339_to_ns(_str(trade["timestamp"], "timestamp")),
                RECV,
            )


def drain(ticks: Callable[[], Iterator[Tick]]) -> None:
    """Run a contender, keeping no tick (a live feed hands them on; holding 100,000 would
    make the garbage collector's passes, not parsing, the cost measured)."""
    deque(ticks(), maxlen=0)


def decode_only(decoder: msgspec.json.Decoder[object], frames: Sequence[str]) -> int:
    for frame in frames:
        decoder.decode(frame)
    return len(frames)


@dataclass(frozen=True, slots=True)
class Schema:
    """One venue message schema: its frames and the three ways to read them."""

    name: str
    frames: list[str]
    protocol: Callable[[], Iterator[Tick]]
    baseline: Callable[[], Iterator[Tick]]
    decoder: msgspec.json.Decoder[object]


def schemas(ticks: Sequence[Tick]) -> list[Schema]:
    """Every schema's frames built from ``ticks``, with its contenders."""
    result = []
    kinds: tuple[StreamKind, ...] = ("aggTrade", "trade")
    for kind in kinds:
        frames = binance_frames(ticks, kind)
        protocol = BinanceSpot([BINANCE_SYMBOL], stream=kind)
        wrapped = CombinedAggTrade if kind == "aggTrade" else CombinedTrade
        result.append(
            Schema(
                f"Binance {kind}",
                frames,
                partial(via_protocol, protocol, frames),
                partial(binance_json, frames, kind),
                msgspec.json.Decoder(wrapped),
            )
        )
    frames = coinbase_frames(ticks)
    coinbase = CoinbaseExchange([COINBASE_PRODUCT])
    result.append(
        Schema(
            "Coinbase match",
            frames,
            partial(via_protocol, coinbase, frames),
            partial(coinbase_json, frames),
            msgspec.json.Decoder(CoinbaseMessage),
        )
    )
    frames = kraken_frames(ticks)
    kraken = KrakenSpot([KRAKEN_SYMBOL])
    result.append(
        Schema(
            "Kraken v2 trade",
            frames,
            partial(via_protocol, kraken, frames),
            partial(kraken_json, frames),
            msgspec.json.Decoder(KrakenTradeMessage),
        )
    )
    return result


def input_ticks(count: int, real: bool = True) -> tuple[str, list[Tick]]:
    """The shared Binance file looped to ``count`` ticks when ``real`` and it is there, else
    synthetic ticks."""
    if real and BINANCE_FILE.exists():
        batches = looped_binance(count, 4096)
        return "Binance BTCUSDT aggTrades (looped)", [t for b in batches for t in b.ticks()]
    feed = SyntheticFeed(instruments=("SYNTH:BTCUSD",), rate=100.0, duration=count / 100.0)
    ticks = [t for batch in feed.batches() for t in batch.ticks()]
    return "synthetic", ticks


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="frames per schema")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--synthetic", action="store_true", help="not the shared Binance file")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one run (for CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.messages, args.repeat = 2_000, 1
    source, ticks = input_ticks(args.messages, real=not args.synthetic)
    print(f"venue frames built from: {source}, {len(ticks):,} per schema")
    for schema in schemas(ticks):
        count = len(schema.frames)
        baseline = measure(
            "json.loads + dict (baseline)", count, partial(drain, schema.baseline), args.repeat
        )
        figures = [
            measure(
                "protocol.parse (msgspec)", count, partial(drain, schema.protocol), args.repeat
            ),
            baseline,
            measure(
                "msgspec decode only, no ticks",
                count,
                partial(decode_only, schema.decoder, schema.frames),
                args.repeat,
            ),
        ]
        print_table(f"{schema.name}: frames to ticks", figures, baseline, "messages/s")


if __name__ == "__main__":
    main()

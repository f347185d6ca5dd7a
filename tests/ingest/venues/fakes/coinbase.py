"""A scripted Coinbase Exchange venue: ``match`` messages built from ticks, heartbeats.

Coinbase publishes no trade files here, so the script replays the real Binance sample as
Coinbase would send those trades on product BTC-USD: the same trade ids (contiguous, as
Coinbase's are), prices, sizes and microsecond times, the maker's side, and sequence numbers
with holes, because a product's ``sequence`` counts the messages of all its channels.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from core.ticks import Side, Tick
from tests.ingest.venues.fakes.binance import file_ticks, venue_decimal

PRODUCT: Final = "BTC-USD"
FIRST_SEQUENCE: Final = 50_000_000_000
MAX_SEQUENCE_STEP: Final = 7
"""Each message's sequence is 1 to this many above the one before (other channels between)."""
HEARTBEAT_EVERY: Final = 50
"""The script's frames carry a heartbeat after every this many matches."""

_ENCODER = msgspec.json.Encoder()
_SECOND = 1_000_000_000


def coinbase_time(ns: int) -> str:
    """RFC 3339 as Coinbase writes it: UTC, ``Z``, 6 fraction digits (9 if the time needs)."""
    seconds, fraction = divmod(ns, _SECOND)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction // 1_000:06d}" if fraction % 1_000 == 0 else f"{fraction:09d}"
    return f"{stamp}.{digits}Z"


def coinbase_frames(
    ticks: Sequence[Tick],
    *,
    product: str = PRODUCT,
    first_sequence: int = FIRST_SEQUENCE,
    heartbeat_every: int = 0,
    seed: int = 0,
) -> list[str]:
    """One ``match`` per tick, in order, and a ``heartbeat`` after every ``heartbeat_every``.

    ``side`` is the maker's side: the opposite of the tick's aggressor. Sequence numbers rise
    by 1 to :data:`MAX_SEQUENCE_STEP` per message (seeded), as on a feed whose other channels
    take the numbers in between; heartbeats take one too and carry the last trade id.
    """
    rng = random.Random(seed)
    sequence = first_sequence
    frames = []
    for count, tick in enumerate(ticks, start=1):
        if tick.side is Side.UNKNOWN:
            raise ValueError(f"a match always has a maker side; tick {tick.trade_id} has none")
        match = {
            "type": "match",
            "trade_id": tick.trade_id,
            "sequence": sequence,
            "maker_order_id": str(uuid.UUID(int=2 * tick.trade_id)),
            "taker_order_id": str(uuid.UUID(int=2 * tick.trade_id + 1)),
            "time": coinbase_time(tick.ts_event),
            "product_id": product,
            "size": venue_decimal(tick.size),
            "price": format(tick.price, "f"),
            "side": "sell" if tick.side is Side.BUY else "buy",
        }
        frames.append(_ENCODER.encode(match).decode())
        sequence += rng.randint(1, MAX_SEQUENCE_STEP)
        if heartbeat_every and count % heartbeat_every == 0:
            beat = {
                "type": "heartbeat",
                "sequence": sequence,
                "last_trade_id": tick.trade_id,
                "product_id": product,
                "time": coinbase_time(tick.ts_event),
            }
            frames.append(_ENCODER.encode(beat).decode())
            sequence += rng.randint(1, MAX_SEQUENCE_STEP)
    return frames


def as_last_match(match_frame: str) -> str:
    """The ``last_match`` Coinbase sends for a trade: the match with its type changed."""
    match = msgspec.json.decode(match_frame)
    assert isinstance(match, dict)
    assert match["type"] == "match"
    return _ENCODER.encode({**match, "type": "last_match"}).decode()


class CoinbaseScript:
    """What a Coinbase Exchange venue sends: the replay, answers, the (re)subscribe snapshot.

    A subscription to ``matches`` starts with a ``last_match`` of the product's latest trade:
    :meth:`snapshot` gives it for the trades sent so far (none before the first one).
    """

    def __init__(self, frames: Sequence[str], product: str = PRODUCT) -> None:
        self._frames = list(frames)
        self._product = product
        self._latest: list[str | None] = []  # latest match frame before index i
        latest: str | None = None
        for frame in self._frames:
            self._latest.append(latest)
            message = msgspec.json.decode(frame)
            if isinstance(message, dict) and message.get("type") == "match":
                latest = frame
        self._latest.append(latest)

    @classmethod
    def from_file(
        cls, shared_data: Path, *, heartbeat_every: int = HEARTBEAT_EVERY
    ) -> CoinbaseScript:
        """The real Binance sample's trades as BTC-USD matches, with heartbeats."""
        frames = coinbase_frames(file_ticks(shared_data), heartbeat_every=heartbeat_every)
        return cls(frames)

    def frames(self) -> list[str]:
        return list(self._frames)

    def replies(self, client_frame: str) -> list[str]:
        try:
            request = msgspec.json.decode(client_frame)
        except msgspec.DecodeError:
            return [_error("Failed to parse the message", "malformed JSON")]
        if not isinstance(request, dict) or request.get("type") != "subscribe":
            return [_error("Failed to subscribe", "type must be subscribe")]
        products = request.get("product_ids")
        channels = request.get("channels")
        if not isinstance(products, list) or not products or not isinstance(channels, list):
            return [_error("Failed to subscribe", "product_ids and channels are required")]
        unknown = [p for p in products if p != self._product]
        if unknown:
            return [_error("Failed to subscribe", f"{unknown[0]} is not a valid product")]
        names = [c.get("name") if isinstance(c, dict) else c for c in channels]
        if not names or not all(isinstance(name, str) for name in names):
            return [_error("Failed to subscribe", "channels must be names or objects with one")]
        answer = {
            "type": "subscriptions",
            "channels": [{"name": name, "product_ids": products} for name in names],
        }
        return [_ENCODER.encode(answer).decode()]

    def snapshot(self, sent: int) -> list[str]:
        latest = self._latest[min(max(sent, 0), len(self._frames))]
        return [] if latest is None else [as_last_match(latest)]


def _error(message: str, reason: str) -> str:
    return _ENCODER.encode({"type": "error", "message": message, "reason": reason}).decode()

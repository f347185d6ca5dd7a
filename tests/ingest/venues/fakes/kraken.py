"""A scripted Kraken Spot WebSocket v2 venue, built from the real trades in the shared data.

The trades of ``kraken-xbtusdt-2025-11-10/trades.json`` (REST rows ``[price, volume, time,
side, ordertype, misc, trade_id]``) become v2 ``trade`` messages: trades with the same time
(one taker order) share an ``update`` message, as Kraken batches them; prices and quantities
are JSON numbers written with the file's digits; ``timestamp`` is RFC 3339 with every
fraction digit of the file's time (Kraken itself writes microseconds; the file has 100 ns),
so the ticks read back are exactly those of the file. A ``heartbeat`` follows every
``heartbeat_every`` trade messages. A (re)subscription gets the ``status`` message and a
``snapshot`` of the latest 50 trades sent before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec

KRAKEN_TRADES: Final = Path("kraken-xbtusdt-2025-11-10") / "trades.json"
"""The real trades, relative to the shared data folder."""
SYMBOL: Final = "BTC/USDT"
"""The v2 symbol of the file's pair (XBTUSDT in the REST API)."""
SNAPSHOT_DEPTH: Final = 50
HEARTBEAT_EVERY: Final = 20

_SIDES: Final = {"b": "buy", "s": "sell"}
_ORDER_TYPES: Final = {"l": "limit", "m": "market"}
_ENCODER = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True, slots=True)
class FileTrade:
    """One row of the REST file, exact."""

    price: Decimal
    volume: Decimal
    time: Decimal
    side: str
    order_type: str
    trade_id: int


def file_trades(shared_data: Path) -> list[FileTrade]:
    """The file's trades in its order, numbers parsed as decimals (never floats)."""
    document = json.loads((shared_data / KRAKEN_TRADES).read_text(), parse_float=Decimal)
    (rows,) = (rows for key, rows in document["result"].items() if key != "last")
    return [
        FileTrade(Decimal(p), Decimal(v), Decimal(t), s, o, int(i)) for p, v, t, s, o, _, i in rows
    ]


def rfc3339(seconds: Decimal) -> str:
    """``1762795433.9717445`` → ``2025-11-10T17:23:53.9717445Z``, every digit kept."""
    whole, _, fraction = format(seconds, "f").partition(".")
    stamp = datetime.fromtimestamp(int(whole), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def trade_object(trade: FileTrade, symbol: str = SYMBOL) -> dict[str, Any]:
    """A v2 trade as Kraken writes it (prices and quantities as JSON numbers)."""
    return {
        "symbol": symbol,
        "side": _SIDES[trade.side],
        "price": trade.price,
        "qty": trade.volume,
        "ord_type": _ORDER_TYPES[trade.order_type],
        "trade_id": trade.trade_id,
        "timestamp": rfc3339(trade.time),
    }


def trade_message(trades: list[FileTrade], kind: str, symbol: str = SYMBOL) -> str:
    body = {"channel": "trade", "type": kind, "data": [trade_object(t, symbol) for t in trades]}
    return _ENCODER.encode(body).decode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KrakenScript:
    """What Kraken v2 sends for one symbol: see the module docstring.

    ``trades_of(i)`` are the trades of frame ``i`` (none for a heartbeat), for tests that
    work out which trades a fault touches.
    """

    def __init__(
        self,
        trades: list[FileTrade],
        symbol: str = SYMBOL,
        *,
        heartbeat_every: int = HEARTBEAT_EVERY,
    ) -> None:
        self.symbol = symbol
        self._frames: list[str] = []
        self._trades: list[list[FileTrade]] = []
        groups: list[list[FileTrade]] = []
        for trade in trades:
            if groups and groups[-1][-1].time == trade.time:
                groups[-1].append(trade)
            else:
                groups.append([trade])
        for n, group in enumerate(groups, start=1):
            self._frames.append(trade_message(group, "update", symbol))
            self._trades.append(group)
            if n % heartbeat_every == 0:
                self._frames.append('{"channel":"heartbeat"}')
                self._trades.append([])

    @classmethod
    def from_file(cls, shared_data: Path, **options: Any) -> KrakenScript:
        return cls(file_trades(shared_data), **options)

    def trades_of(self, index: int) -> list[FileTrade]:
        return list(self._trades[index])

    def trade_frames(self) -> list[int]:
        """Indexes of the frames that carry trades."""
        return [i for i, trades in enumerate(self._trades) if trades]

    # -- VenueScript -----------------------------------------------------------------------

    def frames(self) -> list[str]:
        return list(self._frames)

    def replies(self, client_frame: str) -> list[str]:
        try:
            request = msgspec.json.decode(client_frame)
        except msgspec.DecodeError:
            return [self._error(None, "EGeneral:Invalid arguments", None)]
        if not isinstance(request, dict):
            return [self._error(None, "EGeneral:Invalid arguments", None)]
        method, req_id = request.get("method"), request.get("req_id")
        if method == "ping":
            return [self._reply({"method": "pong", "req_id": req_id})]
        if method != "subscribe":
            return [self._error(method, "Method not found", req_id)]
        params = request.get("params")
        if not isinstance(params, dict) or params.get("channel") != "trade":
            return [self._error(method, "EGeneral:Invalid arguments", req_id)]
        answers = []
        for symbol in params.get("symbol") or []:
            if symbol != self.symbol:
                answers.append(
                    self._error(method, f"Currency pair not supported {symbol}", req_id, symbol)
                )
                continue
            result = {
                "channel": "trade",
                "snapshot": bool(params.get("snapshot")),
                "symbol": symbol,
            }
            answers.append(
                self._reply({"method": method, "result": result, "success": True, "req_id": req_id})
            )
        return answers

    def snapshot(self, sent: int) -> list[str]:
        status = {
            "channel": "status",
            "type": "update",
            "data": [
                {
                    "api_version": "v2",
                    "connection_id": 13834774380200032777,
                    "system": "online",
                    "version": "2.0.0",
                }
            ],
        }
        recent = [trade for trades in self._trades[:sent] for trade in trades][-SNAPSHOT_DEPTH:]
        return [_ENCODER.encode(status).decode(), trade_message(recent, "snapshot", self.symbol)]

    # -- answers ---------------------------------------------------------------------------

    def _reply(self, body: dict[str, Any]) -> str:
        stamp = _now()
        return _ENCODER.encode({**body, "time_in": stamp, "time_out": stamp}).decode()

    def _error(self, method: object, error: str, req_id: object, symbol: str | None = None) -> str:
        body: dict[str, Any] = {"error": error, "success": False}
        if isinstance(method, str):
            body["method"] = method
        if symbol is not None:
            body["symbol"] = symbol
        if req_id is not None:
            body["req_id"] = req_id
        return self._reply(body)

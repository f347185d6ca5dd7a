"""A scripted Binance spot venue: trade events built from ticks, answers to ``SUBSCRIBE``.

:func:`binance_frames` writes ticks as Binance would stream them; the protocol tests and
:class:`BinanceScript` (for the fake venue server) use it. From the shared aggTrades file the
frames are exact: the file's aggregate and raw trade ids are contiguous, so ``f`` and ``l``
come back from a running count started at the file's first raw trade id.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

import msgspec

from core.numbers import scale_of
from core.ticks import Side, Tick
from ingest.files import ReadReport
from ingest.files.reader import read_ticks

BINANCE_FILE: Final = "binance-btcusdt-2026-01-01/BTCUSDT-aggTrades-2026-01-01.head5000.csv"
"""The real aggTrades sample, relative to the shared data folder."""
FILE_FIRST_RAW_TRADE_ID: Final = 5_723_703_861
"""``first_trade_id`` of the sample's first row."""
EVENT_LAG_MS: Final = 3
"""How long after the trade the fake says it sent the event (``E - T``, milliseconds)."""

_ENCODER = msgspec.json.Encoder()


def file_ticks(shared_data: Path) -> list[Tick]:
    """The ticks of the real Binance sample, as :func:`ingest.files.read_ticks` reads them."""
    report = ReadReport()
    ticks = [
        tick
        for batch in read_ticks(shared_data / BINANCE_FILE, report=report)
        for tick in batch.ticks()
    ]
    assert report.ok, report
    return ticks


def venue_decimal(value: Decimal, places: int = 8) -> str:
    """Decimal text as Binance writes it: 8 places, more only when the value needs them."""
    return format(value, f".{places}f") if scale_of(value) <= places else format(value, "f")


def binance_frames(
    ticks: Sequence[Tick],
    *,
    stream: Literal["aggTrade", "trade"] = "aggTrade",
    combined: bool = True,
    time_unit: Literal["ms", "us"] = "ms",
    first_raw_trade_id: int = FILE_FIRST_RAW_TRADE_ID,
) -> list[str]:
    """One Binance event per tick, in order.

    ``aggTrade``: ``a`` is the tick's trade id and ``f..l`` spans ``tick.trades`` raw ids
    counted on from ``first_raw_trade_id``. ``trade``: ``t`` is the tick's trade id (each
    tick stands for one trade). ``T`` is ``ts_event`` floored to milliseconds, or to
    microseconds with ``time_unit="us"`` (what ``timeUnit=MICROSECOND`` asks for). The symbol
    is the instrument's symbol part; ``combined`` wraps each event for a ``/stream`` URL.
    """
    per_unit = 1_000_000 if time_unit == "ms" else 1_000
    lag = EVENT_LAG_MS * 1_000_000 // per_unit
    raw_id = first_raw_trade_id
    frames = []
    for tick in ticks:
        if tick.side is Side.UNKNOWN:
            raise ValueError(f"Binance always names the maker; tick {tick.trade_id} has no side")
        symbol = tick.instrument.split(":", 1)[1]
        trade_time = tick.ts_event // per_unit
        event: dict[str, object] = {"e": stream, "E": trade_time + lag, "s": symbol}
        if stream == "aggTrade":
            event["a"] = tick.trade_id
        else:
            event["t"] = tick.trade_id
        event["p"] = venue_decimal(tick.price)
        event["q"] = venue_decimal(tick.size)
        if stream == "aggTrade":
            event["f"] = raw_id
            event["l"] = raw_id + tick.trades - 1
            raw_id += tick.trades
        event["T"] = trade_time
        event["m"] = tick.side is Side.SELL
        event["M"] = True
        body = {"stream": f"{symbol.lower()}@{stream}", "data": event} if combined else event
        frames.append(_ENCODER.encode(body).decode())
    return frames


class BinanceScript:
    """What a Binance spot venue sends: the replay, and answers to requests.

    Binance sends nothing on (re)subscribing but the live stream: there is no snapshot.
    Requests are answered as Binance documents: ``{"result": null, "id": n}`` for
    ``SUBSCRIBE`` and ``UNSUBSCRIBE``, an error object with a code otherwise.
    """

    def __init__(self, frames: Sequence[str]) -> None:
        self._frames = list(frames)

    @classmethod
    def from_file(cls, shared_data: Path, *, combined: bool = True) -> BinanceScript:
        """aggTrade events of the real sample (symbol BTCUSDT), milliseconds as Binance sends."""
        return cls(binance_frames(file_ticks(shared_data), combined=combined))

    def frames(self) -> list[str]:
        return list(self._frames)

    def replies(self, client_frame: str) -> list[str]:
        try:
            request = msgspec.json.decode(client_frame)
        except msgspec.DecodeError:
            return [_error(3, "Invalid JSON: expected value at line 1 column 1")]
        if not isinstance(request, dict):
            return [_error(2, "Invalid request: expected an object")]
        request_id = request.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool) or request_id < 0:
            return [_error(2, "Invalid request: request ID must be an unsigned integer")]
        method = request.get("method")
        params = request.get("params")
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return [_error(2, f"Invalid request: unknown variant {method}", request_id)]
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return [_error(2, "Invalid request: params must be stream names", request_id)]
        return [_ENCODER.encode({"result": None, "id": request_id}).decode()]

    def snapshot(self, sent: int) -> list[str]:
        return []


def _error(code: int, message: str, request_id: int | None = None) -> str:
    body: dict[str, object] = {"code": code, "msg": message}
    if request_id is not None:
        body["id"] = request_id
    return _ENCODER.encode(body).decode()

"""TradingView's UDF vocabulary: resolutions, symbol info and history payloads. Pure.

A UDF resolution is minutes (``"1"``, ``"60"``), seconds (``"1S"``), days (``"1D"``, ``"D"``),
weeks or months (``"1W"``, ``"1M"``); ours are intervals aligned to the Unix epoch, so weeks
and months (which TradingView starts on Mondays and on the 1st) are not offered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from core.intervals import Interval

_RESOLUTION = re.compile(r"([1-9][0-9]{0,5})?([SDWM]?)")
_COMMON_MINUTES: Final = (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)
_COMMON_SECONDS: Final = (1, 5, 10, 15, 30)
_COMMON_DAYS: Final = (1, 3)


def parse_resolution(text: str) -> Interval:
    """The interval of a UDF resolution; ``ValueError`` for malformed, weekly or monthly."""
    match = _RESOLUTION.fullmatch(text.strip().upper())
    if match is None or text.strip() == "":
        raise ValueError(f"bad resolution {text!r}: expected e.g. 1S, 1, 60, 1D")
    count = int(match.group(1) or "1")
    unit = match.group(2)
    if unit in ("W", "M"):
        raise ValueError(f"resolution {text!r}: weeks and months are not served")
    seconds = count * {"S": 1, "": 60, "D": 86_400}[unit]
    return Interval.of_seconds(seconds)


def resolution_of(interval: Interval) -> str:
    seconds = interval.ns // 1_000_000_000
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400}D"
    if seconds % 60 == 0:
        return str(seconds // 60)
    return f"{seconds}S"


def servable(stored: Sequence[Interval]) -> list[Interval]:
    """The stored intervals and the usual UDF ones that roll up from them, finest first."""
    candidates = {*stored}
    for seconds in (
        *_COMMON_SECONDS,
        *(m * 60 for m in _COMMON_MINUTES),
        *(d * 86_400 for d in _COMMON_DAYS),
    ):
        interval = Interval.of_seconds(seconds)
        if any(interval.ns % s.ns == 0 for s in stored):
            candidates.add(interval)
    return sorted(candidates)


def config(stored: Sequence[Interval], exchanges: Sequence[str]) -> dict[str, Any]:
    return {
        "supported_resolutions": [resolution_of(i) for i in servable(stored)],
        "supports_group_request": False,
        "supports_marks": False,
        "supports_search": True,
        "supports_timescale_marks": False,
        "supports_time": True,
        "exchanges": [
            {"value": "", "name": "All Exchanges", "desc": ""},
            *({"value": e, "name": e, "desc": e} for e in exchanges),
        ],
        "symbols_types": [
            {"name": "All types", "value": ""},
            {"name": "Crypto", "value": "crypto"},
        ],
    }


def symbol_info(
    instrument: str, stored: Sequence[Interval], price_scale: int, size_scale: int
) -> dict[str, Any]:
    venue, symbol = instrument.split(":", 1)
    minutes = [i for i in stored if i.ns % 60_000_000_000 == 0 and i.ns < 86_400_000_000_000]
    seconds = [i for i in stored if i.ns < 60_000_000_000]
    return {
        "name": instrument,
        "ticker": instrument,
        "full_name": instrument,
        "description": f"{symbol} on {venue}",
        "type": "crypto",
        "exchange": venue,
        "listed_exchange": venue,
        "session": "24x7",
        "timezone": "Etc/UTC",
        "minmov": 1,
        "pricescale": 10**price_scale,
        "format": "price",
        "has_intraday": True,
        "has_seconds": bool(seconds),
        "seconds_multipliers": [str(i.ns // 1_000_000_000) for i in seconds],
        "intraday_multipliers": [str(i.ns // 60_000_000_000) for i in minutes],
        "has_daily": True,
        "daily_multipliers": ["1"],
        "has_weekly_and_monthly": False,
        "supported_resolutions": [resolution_of(i) for i in servable(stored)],
        "volume_precision": size_scale,
        "data_status": "streaming",
    }


def search_result(instrument: str) -> dict[str, str]:
    venue, symbol = instrument.split(":", 1)
    return {
        "symbol": instrument,
        "full_name": instrument,
        "description": f"{symbol} on {venue}",
        "exchange": venue,
        "ticker": instrument,
        "type": "crypto",
    }


Bar = tuple[int, str, str, str, str, str, bool]
"""One bar: open time (unix seconds), open, high, low, close, volume (exact decimal text), and
whether the candle overlaps a feed gap."""


def history_ok(bars: Sequence[Bar]) -> bytes:
    """``{"s": "ok", "t": [...], "o": [...], ...}`` from :data:`Bar` rows.

    Prices and volumes go out as JSON numbers written with their exact decimal digits. When a
    bar is flagged, a ``gap`` array follows (a boolean per bar); without one it is left out,
    so the body is TradingView's shape exactly.
    """
    columns = list(zip(*bars, strict=True))
    parts = [f'"t":[{",".join(str(t) for t in columns[0])}]']
    for key, values in zip("ohlcv", columns[1:6], strict=True):
        parts.append(f'"{key}":[{",".join(values)}]')
    if any(columns[6]):
        parts.append(f'"gap":[{",".join("true" if g else "false" for g in columns[6])}]')
    return ('{"s":"ok",' + ",".join(parts) + "}").encode()

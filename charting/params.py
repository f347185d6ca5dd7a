"""Query parameters: parsed and checked at the edge, each error naming its parameter.

Times are ISO 8601 (``2026-01-01T00:00:00Z``; without an offset, UTC) or epoch milliseconds
(``1767225600000``), and become UTC nanoseconds. Cursors are opaque to clients: URL-safe
base64 of the position the next page starts at (inclusive).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from starlette.datastructures import QueryParams

from charting.times import END_OF_TIME
from core.instruments import canonical_instrument, validate_instrument
from core.intervals import Interval
from web.problems import invalid

NS_PER_MS: Final = 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"[0-9]{1,16}")
_CURSOR = re.compile(r"(c|t)\.([0-9]{1,20})(?:\.([0-9]{1,19}))?")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: a candle open time, or a tick's (``ts_event``, trade id)."""

    kind: str
    ns: int
    trade_id: int | None = None

    def encode(self) -> str:
        text = f"{self.kind}.{self.ns}" + ("" if self.trade_id is None else f".{self.trade_id}")
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def required(params: QueryParams, name: str) -> str:
    value = params.get(name)
    if value is None or not value.strip():
        raise invalid(name, f"{name} is required")
    return value.strip()


def instrument(params: QueryParams, name: str = "instrument") -> str:
    text = required(params, name)
    try:
        return validate_instrument(canonical_instrument(text))
    except ValueError as exc:
        raise invalid(name, f"{name}: {exc}") from None


MAX_INTERVAL_NS: Final = 3650 * 86_400 * 1_000_000_000


def interval(params: QueryParams, name: str = "interval") -> Interval:
    text = required(params, name)
    try:
        parsed = Interval.parse(text)
    except ValueError as exc:
        raise invalid(name, f"{name}: {exc}") from None
    if parsed.ns > MAX_INTERVAL_NS:
        raise invalid(name, f"{name}: {text!r} is longer than the longest served, 3650d")
    return parsed


def time_ns(params: QueryParams, name: str, default: int | None = None) -> int:
    """A time parameter as UTC nanoseconds; ``default`` when absent (None: required)."""
    text = params.get(name)
    if text is None or not text.strip():
        if default is None:
            raise invalid(name, f"{name} is required (ISO 8601 or epoch milliseconds)")
        return default
    return parse_time(name, text.strip())


def parse_time(name: str, text: str) -> int:
    if _DIGITS.fullmatch(text):
        ns = int(text) * NS_PER_MS
        if ns >= END_OF_TIME:
            raise invalid(name, f"{name}: {text} epoch milliseconds is not before the year 9999")
        return ns
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(
            name,
            f"{name}: {text!r} is neither ISO 8601 (2026-01-01T00:00:00Z) nor epoch milliseconds",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise invalid(name, f"{name}: {text!r} is out of range") from None
    if moment.year < 1970:
        raise invalid(name, f"{name}: {text!r} is before 1970")
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    ns = seconds * 1_000_000_000 + moment.microsecond * 1000
    if ns >= END_OF_TIME:
        raise invalid(name, f"{name}: {text!r} is not before the year 9999")
    return ns


def time_range(params: QueryParams, *, end_default: int) -> tuple[int, int]:
    """``start`` (required) and ``end`` (default ``end_default``), with ``start < end``."""
    start = time_ns(params, "start")
    end = time_ns(params, "end", end_default)
    if start >= end:
        raise invalid("start", "start must be before end (the range is [start, end))")
    return start, end


def integer(
    params: QueryParams, name: str, default: int | None, low: int, high: int, what: str = ""
) -> int | None:
    """An integer parameter within ``[low, high]``; ``default`` when absent."""
    text = params.get(name)
    if text is None or not text.strip():
        return default
    text = text.strip()
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise invalid(name, f"{name} must be a whole number, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        reason = what or f"{name} must be between {low} and {high}"
        raise invalid(name, f"{reason}, got {value}")
    return value


def limit(params: QueryParams, default: int, maximum: int) -> int:
    value = integer(
        params,
        "limit",
        default,
        1,
        maximum,
        f"limit must be between 1 and {maximum} (the row limit; follow the next link for more)",
    )
    assert value is not None
    return value


def cursor(params: QueryParams, kind: str, start: int, end: int) -> Cursor | None:
    """The ``cursor`` parameter, checked to be of this endpoint and inside ``[start, end)``."""
    text = params.get("cursor")
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    match = _CURSOR.fullmatch(decoded)
    if match is None or match.group(1) != kind or (kind == "t") != (match.group(3) is not None):
        raise invalid("cursor", "cursor is not one this endpoint gave out (use the next link)")
    ns = int(match.group(2))
    trade_id = None if match.group(3) is None else int(match.group(3))
    if trade_id is not None and trade_id >= 2**63:
        raise invalid("cursor", "cursor is not one this endpoint gave out (use the next link)")
    if not start <= ns < end:
        raise invalid("cursor", "cursor lies outside [start, end): keep the query as it was")
    return Cursor(kind, ns, trade_id)

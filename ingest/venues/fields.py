"""Checks that every venue protocol applies to the fields it reads, and the reasons it gives.

A venue frame that cannot become a tick is a :class:`~ingest.venues.base.BadFrame` whose
``reason`` is one of the short codes below (the same for every venue, so that rejects can be
counted across venues) and whose ``detail`` names the venue's field, e.g.
``p (price) '-1' is not positive``.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final

from core.numbers import MAX_SCALE, scale_of

NOT_JSON: Final = "not_json"
"""The frame is not JSON text."""
UNKNOWN_SHAPE: Final = "unknown_shape"
"""JSON, but not a message of the venue's protocol (no type field, a list, ...)."""
BAD_FIELD: Final = "bad_field"
"""A known message with a field missing or of the wrong type."""
BAD_DECIMAL: Final = "bad_decimal"
"""A price or size that is not a finite decimal number with at most 18 places."""
NOT_POSITIVE: Final = "not_positive"
"""A price or size of zero or below."""
BAD_TIME: Final = "bad_time"
"""A trade time that is not a time (or not one the platform can hold)."""
UNKNOWN_SYMBOL: Final = "unknown_symbol"
"""A trade of a symbol the connection did not subscribe to."""
BAD_TICK: Final = "bad_tick"
"""Fields that each looked right but do not make a valid tick (kept as a last safety net)."""

MAX_DIGITS: Final = 18
"""Prices and sizes must be below ``10**18``: the int64 columns of a tick batch hold them."""

_MAX_NS: Final = 2**63
_ZERO: Final = Decimal(0)


class FieldError(Exception):
    """A field that cannot go into a tick: ``reason`` is one of the codes above."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def positive_decimal(text: str, field: str) -> Decimal:
    """The exact value of decimal ``text`` (the venue's field ``field``), checked.

    Refused with :class:`FieldError`: text that is not a number, non-finite values, zero
    or below, more than 18 decimal places, ``10**18`` or more (what a tick batch cannot
    hold). Trailing zeros are kept (``"87648.21000000"`` stays as sent).
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FieldError(BAD_DECIMAL, f"{field} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise FieldError(BAD_DECIMAL, f"{field} {text!r} is not a finite number")
    if value <= _ZERO:
        raise FieldError(NOT_POSITIVE, f"{field} {text!r} is not positive")
    if value.adjusted() >= MAX_DIGITS:
        raise FieldError(BAD_DECIMAL, f"{field} {text!r} is not below 10**{MAX_DIGITS}")
    # Plain text of at most MAX_SCALE + 1 characters cannot hold more places: skip the
    # exact (slower) count for every ordinary value.
    if (len(text) > MAX_SCALE + 1 or "e" in text or "E" in text) and scale_of(value) > MAX_SCALE:
        raise FieldError(BAD_DECIMAL, f"{field} {text!r} has more than {MAX_SCALE} places")
    return value


class DecimalCache:
    """:func:`positive_decimal` with a memory of at most ``size`` texts it accepted.

    A feed repeats prices, and many sizes, trade after trade: looking the text up costs a
    fraction of building and checking a :class:`~decimal.Decimal` (decimals are immutable,
    so ticks may share them). Refused text is never kept; a full cache is emptied at once
    (simple and bounded; a busy market refills it within moments).
    """

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError("a decimal cache holds at least one value")
        self._size = size
        self._values: dict[str, Decimal] = {}

    def __call__(self, text: str, field: str) -> Decimal:
        value = self._values.get(text)
        if value is None:
            value = positive_decimal(text, field)
            if len(self._values) >= self._size:
                self._values.clear()
            self._values[text] = value
        return value

    def __len__(self) -> int:
        return len(self._values)


def json_kind(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=64)
def _epoch_day(text: str) -> int:
    """Days from 1970-01-01 to the ``YYYY-MM-DD`` date ``text`` (a live feed repeats dates)."""
    return date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL


_MINUTE = re.compile(r"(\d{4}-\d{2}-\d{2})T([01]\d|2[0-3]):([0-5]\d)")


@functools.lru_cache(maxsize=256)
def _minute_ns(text: str) -> int:
    """Epoch ns of a ``YYYY-MM-DDTHH:MM`` UTC minute; ``ValueError`` if it is not one."""
    match = _MINUTE.fullmatch(text)
    if match is None:
        raise ValueError(text)
    day, hour, minute = match.groups()
    return ((_epoch_day(day) * 24 + int(hour)) * 60 + int(minute)) * 60_000_000_000


def rfc3339_to_ns(text: str) -> int:
    """Exact epoch nanoseconds of an RFC 3339 time such as ``2014-11-07T08:19:27.028459Z``.

    Up to 9 fraction digits are kept exactly (a float or :class:`~datetime.datetime` would
    round past microseconds); an offset is required (``Z`` or ``+HH:MM``); leap seconds and
    times before 1970 or after 2262 raise ``ValueError`` with the reason.

    The form venues send, ``YYYY-MM-DDTHH:MM:SS.fffZ``, takes a fast path: the minute is
    parsed once and cached (a feed repeats it for a minute), then only the seconds and the
    fraction are read. Anything else, or anything odd, goes the general (regex) way.
    """
    if len(text) > 20 and text[-1] == "Z" and text[19] == "." and text[16] == ":":
        seconds, fraction = text[17:19], text[20:-1]
        if (
            len(fraction) <= 9
            and seconds.isdigit()
            and fraction.isdigit()
            and seconds.isascii()
            and fraction.isascii()
            and seconds < "60"
        ):
            try:
                minute = _minute_ns(text[:16])
            except ValueError:
                return _rfc3339_general(text)
            nanoseconds = minute + int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0"))
            if 0 < nanoseconds < _MAX_NS:
                return nanoseconds
    return _rfc3339_general(text)


def _rfc3339_general(text: str) -> int:
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("is not an RFC 3339 time with an offset (YYYY-MM-DDTHH:MM:SS[.f]Z)")
    day, hour, minute, second, fraction, sign, offset_hours, offset_minutes = match.groups()
    try:
        days = _epoch_day(day)
    except ValueError:
        raise ValueError(f"has no such date {day}") from None
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise ValueError("has no such time of day")
    seconds = days * 86_400 + int(hour) * 3_600 + int(minute) * 60 + int(second)
    if sign is not None:
        if int(offset_hours) > 23 or int(offset_minutes) > 59:
            raise ValueError("has no such offset")
        offset = int(offset_hours) * 3_600 + int(offset_minutes) * 60
        seconds -= offset if sign == "+" else -offset
    nanoseconds = seconds * 1_000_000_000 + (int(fraction.ljust(9, "0")) if fraction else 0)
    if not 0 < nanoseconds < _MAX_NS:
        raise ValueError("is not between 1970 and 2262")
    return nanoseconds

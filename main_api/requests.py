"""Request bodies into checked values (sans-I/O): every refusal is an :class:`InvalidFieldError`
naming the field (``instruments[2]``, ``threshold``) with our code.

What is checked here needs nothing but the body: shapes, bounds, formats, a time zone's
existence, an interval's label. What needs the world (an instrument that exists, one the
plan covers, a plan's limits) is the app's and the store's.
"""

from __future__ import annotations

import functools
import unicodedata
import zoneinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

import msgspec

from core.alerts import Arming, Condition, Source
from core.instruments import canonical_instrument, validate_instrument
from web.bodies import json_object

MAX_NAME_CHARS: Final = 64
"""A display name's or a watchlist's name's length."""
MAX_ORDER_IDS: Final = 100
"""The most ids a reorder of watchlists may list."""
MAX_WINDOW_S: Final = 7 * 86_400
"""The longest window of a move alert: a week."""
MAX_COOLDOWN_S: Final = 30 * 86_400
MAX_EXPIRY_NS: Final = 366 * 86_400 * 10**9
"""How far ahead an alert may expire: a year and a day."""
MAX_PERCENT: Final = Decimal(1000)
MAX_DIGITS: Final = 30
"""Significant digits of a threshold (prices are exact decimals)."""
MAX_ID_CHARS: Final = 64

_decoder: Final = msgspec.json.Decoder(float_hook=Decimal)


class InvalidFieldError(ValueError):
    """A request refused: ``field`` at fault, our ``code``, and what is wrong."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.code, self.message = field, code, message


def fields(body: bytes, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object ``body`` as a dict holding only ``allowed`` names (``null`` is
    absent)."""
    return json_object(body, allowed, InvalidFieldError, decoder=_decoder)


def name(value: object, field: str, *, empty: bool = False) -> str:
    """A display or watchlist name: text of 1 (0 with ``empty``) to :data:`MAX_NAME_CHARS`
    characters, trimmed, without control characters."""
    if not isinstance(value, str):
        raise InvalidFieldError(field, "type", "must be a string")
    text = value.strip()
    if len(text) > MAX_NAME_CHARS:
        raise InvalidFieldError(field, "too-long", f"at most {MAX_NAME_CHARS} characters")
    if not text and not empty:
        raise InvalidFieldError(field, "required", "must not be empty")
    if any(unicodedata.category(char).startswith("C") for char in text):
        raise InvalidFieldError(field, "format", "must hold no control characters")
    return text


def time_zone(value: object, field: str = "time_zone") -> str:
    """An IANA time zone name that this machine's zone database holds (``Europe/Paris``)."""
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS or value not in _zones():
        raise InvalidFieldError(
            field, "unknown-time-zone", "must be an IANA time zone (Europe/Paris, UTC)"
        )
    return value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def interval(value: object, labels: tuple[str, ...], field: str = "interval") -> str:
    """One of the platform's interval ``labels``, as written there (``1m``, not ``60s``)."""
    if not isinstance(value, str) or value not in labels:
        raise InvalidFieldError(field, "unknown-interval", f"must be one of {', '.join(labels)}")
    return value


def instrument(value: object, field: str = "instrument") -> str:
    """An instrument id (``VENUE:SYMBOL``, upper-cased as the platform writes it)."""
    if not isinstance(value, str) or len(value) > 2 * MAX_ID_CHARS:
        raise InvalidFieldError(field, "format", "must be an instrument id such as BINANCE:BTCUSDT")
    try:
        return validate_instrument(canonical_instrument(value))
    except ValueError:
        raise InvalidFieldError(
            field, "format", "must be an instrument id such as BINANCE:BTCUSDT"
        ) from None


def instruments(value: object, most: int, field: str = "instruments") -> list[str]:
    """A list of distinct instrument ids, at most ``most`` (the hard bound; the plan's limit
    is the store's check)."""
    if not isinstance(value, list):
        raise InvalidFieldError(field, "type", "must be a list of instrument ids")
    if len(value) > most:
        raise InvalidFieldError(field, "too-many", f"at most {most} instruments")
    found: list[str] = []
    for index, item in enumerate(value):
        checked = instrument(item, f"{field}[{index}]")
        if checked in found:
            raise InvalidFieldError(
                f"{field}[{index}]", "duplicate", f"{checked} is already in the list"
            )
        found.append(checked)
    return found


def ids(value: object, field: str, most: int = MAX_ORDER_IDS) -> list[str]:
    """A list of at most ``most`` distinct ids."""
    if not isinstance(value, list) or len(value) > most:
        raise InvalidFieldError(field, "type", f"must be a list of at most {most} ids")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not 0 < len(item) <= MAX_ID_CHARS:
            raise InvalidFieldError(f"{field}[{index}]", "format", "must be an id")
    if len(set(value)) != len(value):
        raise InvalidFieldError(field, "duplicate", "names an id twice")
    return list(value)


def whole(value: object, field: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFieldError(field, "type", "must be a whole number")
    if not low <= value <= high:
        raise InvalidFieldError(field, "out-of-range", f"must be {low} to {high}")
    return value


def decimal(value: object, field: str) -> Decimal:
    """An exact positive decimal, from a JSON string (``"50000.5"``) or number (read from its
    text, never through a float)."""
    number: Decimal | None = None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        raise InvalidFieldError(
            field, "not-a-number", 'must be a decimal number (a string such as "0.5")'
        )
    if number <= 0:
        raise InvalidFieldError(field, "not-positive", "must be above 0")
    if len(number.as_tuple().digits) > MAX_DIGITS or abs(number.adjusted()) > 20:
        raise InvalidFieldError(field, "out-of-range", f"at most {MAX_DIGITS} digits")
    return number


E = TypeVar("E", Condition, Source, Arming)


def choice(value: object, kind: type[E], field: str) -> E:
    """One of the values of the enumeration ``kind``."""
    if isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    allowed = ", ".join(member.value for member in kind)
    raise InvalidFieldError(field, "unknown", f"must be one of {allowed}")

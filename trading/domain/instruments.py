"""What an order needs to know of an instrument: its base and quote currencies.

``spec_of("KRAKEN:XBTUSDT")`` is XBT quoted in USDT: a buy pays USDT and receives XBT. A symbol
with a separator (``COINBASE:BTC-USD``, ``KRAKEN:XBT/USDT``) splits there; one without splits
before the longest quote currency it ends with (:data:`QUOTE_CURRENCIES`).
"""

from __future__ import annotations

import functools
import re
from typing import Final

import msgspec

from core.instruments import validate_instrument

QUOTE_CURRENCIES: Final = (
    "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "JPY", "CHF", "CAD",
    "AUD", "TRY", "BRL", "XBT", "BTC", "ETH", "BNB",
)  # fmt: skip
"""The quote currencies a symbol without a separator may end with (longest match wins)."""

_BY_LENGTH: Final = sorted(QUOTE_CURRENCIES, key=len, reverse=True)
_SEPARATOR: Final = re.compile(r"[-/_.]")
_CURRENCY: Final = re.compile(r"[A-Z0-9]{1,16}")


class UnknownInstrumentError(ValueError):
    """An instrument whose currencies :func:`spec_of` cannot tell (our code:
    ``unknown-instrument``)."""

    code: Final = "unknown-instrument"


class InstrumentSpec(msgspec.Struct, frozen=True, kw_only=True):
    instrument: str
    base: str
    """What is bought and sold (``XBT``)."""
    quote: str
    """What it is paid in (``USDT``)."""


@functools.lru_cache(maxsize=4096)
def spec_of(instrument: str) -> InstrumentSpec:
    """The spec of ``instrument``; :class:`UnknownInstrumentError` when it is malformed or its
    symbol does not split into two currencies."""
    try:
        symbol = validate_instrument(instrument).split(":", 1)[1]
    except ValueError as exc:
        raise UnknownInstrumentError(str(exc)) from None
    parts = _SEPARATOR.split(symbol)
    if len(parts) == 1:
        parts = next(
            ([symbol[: -len(q)], q] for q in _BY_LENGTH if symbol.endswith(q) and symbol != q),
            parts,
        )
    if len(parts) != 2 or not all(_CURRENCY.fullmatch(part) for part in parts):
        raise UnknownInstrumentError(
            f"cannot tell the base and quote currencies of {instrument!r}"
            " (write the symbol as BASE-QUOTE, or end it with a known quote currency)"
        )
    return InstrumentSpec(instrument=instrument, base=parts[0], quote=parts[1])

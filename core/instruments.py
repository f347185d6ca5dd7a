"""Instrument ids: ``VENUE:SYMBOL``, e.g. ``BINANCE:BTCUSDT`` or ``KRAKEN:XBTUSDT``."""

from __future__ import annotations

import re

INSTRUMENT_PATTERN = r"[A-Z0-9_]{1,32}:[A-Z0-9_./-]{1,64}"
"""What an instrument id looks like (for wire schemas that check it while decoding)."""

_INSTRUMENT = re.compile(INSTRUMENT_PATTERN)


def validate_instrument(instrument: str) -> str:
    """Return ``instrument`` if it is a well-formed id, else raise ``ValueError``.

    Venue and symbol are upper case; the symbol may carry ``/``, ``-``, ``.`` and ``_``
    (``COINBASE:BTC-USD``, ``KRAKEN:XBT/USDT``).
    """
    if not isinstance(instrument, str) or _INSTRUMENT.fullmatch(instrument) is None:
        raise ValueError(
            f"instrument must look like VENUE:SYMBOL in upper case, got {instrument!r}"
        )
    return instrument


def canonical_instrument(text: str) -> str:
    """An instrument id as a user may type it (``synth:btcusd``), in its canonical upper case.

    Request parsers call it at the edge, before :func:`validate_instrument`.
    """
    return text.upper()


def make_instrument(venue: str, symbol: str) -> str:
    """Build and validate an id from its parts (upper-casing both)."""
    return validate_instrument(f"{venue.upper()}:{symbol.upper()}")


def venue_of(instrument: str) -> str:
    """The venue part of an instrument id."""
    return instrument.split(":", 1)[0]

"""Kept for the modules that still import candle text from here; use :mod:`core.present`.

The presentation of candles moved to :mod:`core.present` (:mod:`core.present.text` for the
values as text). This module only re-exports the two names still imported from it and goes
once no module does.
"""

from __future__ import annotations

from core.present.text import CANDLE_COLUMNS, iso_utc

__all__ = ["CANDLE_COLUMNS", "iso_utc"]

"""Ticks for engine tests, built from plain numbers."""

from __future__ import annotations

from decimal import Decimal

from core.ticks import Side, Tick

SECOND = 1_000_000_000
T0 = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z


def tick(
    trade_id: int,
    seconds: float,
    price: str = "100",
    size: str = "1",
    side: Side = Side.BUY,
    instrument: str = "TEST:ABC",
) -> Tick:
    """A tick ``seconds`` after :data:`T0` (exact to the nanosecond for short decimals)."""
    ts = T0 + int(Decimal(str(seconds)) * SECOND)
    return Tick(instrument, trade_id, Decimal(price), Decimal(size), side, ts, ts)

"""The paper venue's settings: latency, maker/taker fees, the queue model, and its bounds.

One frozen object, built at the edge (the service's configuration) and passed to
:class:`~trading.paper.matcher.PaperMatcher`. Every field has a sensible default and is
checked when built.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MAX_FEE_BPS = Decimal(1000)
"""A fee above 10% of the notional is a mistake, not a venue."""


@dataclass(frozen=True, slots=True)
class QueueModel:
    """How much size stands ahead of a resting limit order at its own price.

    Trades alone show no order book, so the queue ahead is estimated from the trades: it is
    ``fraction`` times the size that traded at exactly the order's price during the
    ``lookback_ns`` before the order rested (see ``docs/trading.md``, "Paper venue"). A price
    that traded a lot recently is a price where much size rests; a price that never traded
    has (as far as trades can tell) nobody ahead. ``fraction=0`` fills on the first touch;
    a larger fraction is more conservative.
    """

    lookback_ns: int = 60_000_000_000
    fraction: Decimal = Decimal(1)
    max_trades: int = 100_000
    """At most this many recent trades are remembered per instrument (the look-back's bound)."""

    def __post_init__(self) -> None:
        if self.lookback_ns < 0:
            raise ValueError(f"lookback_ns must be non-negative, got {self.lookback_ns}")
        if not self.fraction.is_finite() or self.fraction < 0:
            raise ValueError(f"fraction must be a non-negative number, got {self.fraction}")
        if self.max_trades < 1:
            raise ValueError(f"max_trades must be at least 1, got {self.max_trades}")


@dataclass(frozen=True, slots=True)
class PaperSettings:
    """The paper venue's settings.

    ``latency_ns``: an order takes part only in trades with ``ts_event >= submit time +
    latency_ns``. ``maker_fee_bps`` / ``taker_fee_bps``: fees in basis points of the fill's
    notional, in the quote currency (no rebates: a fill's fee is never negative on
    ``trading.events``). ``fee_places``: the fee is rounded up (the venue's favour) to this
    many decimal places.
    ``max_open_orders``: a submit beyond this many working orders is rejected.
    """

    latency_ns: int = 0
    maker_fee_bps: Decimal = Decimal(0)
    taker_fee_bps: Decimal = Decimal(0)
    fee_places: int = 8
    queue: QueueModel = QueueModel()
    max_open_orders: int = 10_000

    def __post_init__(self) -> None:
        if self.latency_ns < 0:
            raise ValueError(f"latency_ns must be non-negative, got {self.latency_ns}")
        for name in ("maker_fee_bps", "taker_fee_bps"):
            bps: Decimal = getattr(self, name)
            if not bps.is_finite() or not 0 <= bps <= MAX_FEE_BPS:
                raise ValueError(f"{name} must be within 0..{MAX_FEE_BPS}, got {bps}")
        if not 0 <= self.fee_places <= 18:
            raise ValueError(f"fee_places must be within 0..18, got {self.fee_places}")
        if self.max_open_orders < 1:
            raise ValueError(f"max_open_orders must be at least 1, got {self.max_open_orders}")

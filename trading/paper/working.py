"""A :class:`WorkingOrder`: the paper venue's mutable view of one accepted order while it
works: what is left of it, its place in time priority, the queue estimated ahead of it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from core.trading_events import OrderSide, OrderSubmitted, OrderType, TimeInForce
from trading.domain.exact import EXACT

ZERO: Final = Decimal(0)


@dataclass(slots=True, eq=False)
class WorkingOrder:
    """One accepted order at the paper venue (compared by identity)."""

    order: OrderSubmitted
    venue_order_id: str
    fee_currency: str
    live_ts: int
    """The order takes part in trades with ``ts_event >= live_ts`` (submit time + latency)."""
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    seq: int = 0
    """Time priority within its instrument: smaller is earlier; a new number when the order
    loses its place."""
    filled: Decimal = ZERO
    queue_ahead: Decimal = ZERO
    """Size estimated ahead of a resting limit at its price (the queue model)."""
    live: bool = False
    triggered: bool = False
    fills: int = 0

    @property
    def remaining(self) -> Decimal:
        return EXACT.subtract(self.quantity, self.filled)

    @property
    def is_buy(self) -> bool:
        return self.order.side == OrderSide.BUY

    @property
    def immediate(self) -> bool:
        """Immediate-or-cancel or fill-or-kill: it ends with the first trade it meets."""
        return self.order.time_in_force != TimeInForce.GTC

    @property
    def waiting_stop(self) -> bool:
        """A stop-market order that has not triggered yet."""
        return self.order.type == OrderType.STOP_MARKET and not self.triggered

    @property
    def resting(self) -> bool:
        """A good-till-cancel limit order: it rests, and makes liquidity."""
        return self.order.type == OrderType.LIMIT and not self.immediate

    def improvement(self, trade_price: Decimal) -> Decimal:
        """How far the trade printed through this order's limit (negative: not reached)."""
        assert self.price is not None
        diff = EXACT.subtract(self.price, trade_price)
        return diff if self.is_buy else -diff

    def stop_reached(self, trade_price: Decimal) -> bool:
        """A buy stop triggers on a trade at or above its stop, a sell stop at or below."""
        assert self.stop_price is not None
        return trade_price >= self.stop_price if self.is_buy else trade_price <= self.stop_price

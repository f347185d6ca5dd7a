"""The matcher's working orders and how one trade is shared among them.

A :class:`WorkingOrder` is the venue's mutable view of one accepted order: what is left, its
place in time priority, its estimated queue. :func:`claims` says which working orders one
trade can fill, at what price and up to how much, in priority order; :func:`allocate` shares
the trade's size among them so that the fills never add up to more than the trade.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from core.ticks import Tick
from core.trading_events import Liquidity, OrderSide, OrderSubmitted, OrderType, TimeInForce
from trading.domain.exact import EXACT

_ZERO = Decimal(0)


@dataclass(slots=True)
class WorkingOrder:
    """One accepted order while it works at the paper venue."""

    order: OrderSubmitted
    venue_order_id: str
    fee_currency: str
    seq: int
    """Time priority: smaller is earlier; a new number when the order loses its place."""
    live_ts: int
    """The order takes part in trades with ``ts_event >= live_ts`` (submit time + latency)."""
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    filled: Decimal = _ZERO
    queue_ahead: Decimal = _ZERO
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
    def taking(self) -> bool:
        """It takes liquidity: a market order, a triggered stop, an IOC or FOK limit."""
        if self.order.type == OrderType.STOP_MARKET:
            return self.triggered
        return self.order.type == OrderType.MARKET or self.immediate

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


@dataclass(frozen=True, slots=True)
class Claim:
    """What one trade may give one working order."""

    order: WorkingOrder
    price: Decimal
    cap: Decimal
    ahead: Decimal
    """What of the trade goes to the queue ahead first (a touch of a resting limit)."""
    liquidity: Liquidity
    all_or_none: bool


@dataclass(frozen=True, slots=True)
class Allocation:
    """One fill: ``quantity`` of ``order`` at ``price``."""

    order: WorkingOrder
    price: Decimal
    quantity: Decimal
    liquidity: Liquidity


def claims(orders: Iterable[WorkingOrder], tick: Tick) -> list[Claim]:
    """The live orders ``tick`` can fill, in priority order.

    Priority: orders that take liquidity first, then resting limits by how far the trade
    printed through their price (the price a sweep reaches first), then time (``seq``).
    A taker fills at the trade's price, a resting limit at its own. A resting limit that the
    trade only touches gets what is left of the trade beyond the queue ahead of it.
    """
    ranked: list[tuple[tuple[int, Decimal, int], Claim]] = []
    for order in orders:
        if not order.live or order.remaining <= 0:
            continue
        if order.taking:
            if order.price is not None and order.improvement(tick.price) < 0:
                continue  # an IOC or FOK limit the trade is worse than
            fok = order.order.time_in_force == TimeInForce.FOK
            claim = Claim(order, tick.price, order.remaining, _ZERO, Liquidity.TAKER, fok)
            ranked.append(((0, _ZERO, order.seq), claim))
        elif order.resting:
            through = order.improvement(tick.price)
            if through < 0:
                continue
            ahead = order.queue_ahead if through == 0 else _ZERO
            assert order.price is not None
            claim = Claim(order, order.price, order.remaining, ahead, Liquidity.MAKER, False)
            ranked.append(((1, -through, order.seq), claim))
    ranked.sort(key=lambda item: item[0])
    return [claim for _, claim in ranked]


def allocate(ranked: Iterable[Claim], size: Decimal) -> list[Allocation]:
    """Share ``size`` among ``ranked`` in order: each claim gets what is left of the trade
    beyond the queue ahead of it, up to its cap; a fill-or-kill claim gets all or nothing."""
    fills: list[Allocation] = []
    left = size
    for claim in ranked:
        available = max(_ZERO, EXACT.subtract(left, claim.ahead))
        if claim.all_or_none:
            quantity = claim.cap if claim.cap <= available else _ZERO
        else:
            quantity = min(claim.cap, available)
        if quantity > 0:
            fills.append(Allocation(claim.order, claim.price, quantity, claim.liquidity))
            left = EXACT.subtract(left, quantity)
    return fills

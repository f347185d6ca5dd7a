"""How one trade is shared among the working orders it reaches.

:func:`claims` says what a trade may give each order it reaches, at what price and up to how
much, in priority order; :func:`allocate` shares the trade's size among them so that the
fills never add up to more than the trade.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from core.ticks import Tick
from core.trading_events import Liquidity, TimeInForce
from trading.domain.exact import EXACT
from trading.paper.working import ZERO, WorkingOrder


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


def claims(
    takers: Iterable[WorkingOrder], makers: Iterable[WorkingOrder], tick: Tick
) -> list[Claim]:
    """What ``tick`` may give the live orders that take (market orders, triggered stops,
    IOC and FOK) and the resting limits it reaches (at or through their price), in priority.

    Priority: takers first, then resting limits by how far the trade printed through their
    price (the price a sweep reaches first), then time (``seq``). A taker fills at the
    trade's price (an IOC or FOK limit only when the trade is at its price or better), a
    resting limit at its own; one the trade only touches gets what is left of the trade
    beyond the queue ahead of it.
    """
    ranked: list[tuple[tuple[int, Decimal, int], Claim]] = []
    for order in takers:
        if order.price is not None and order.improvement(tick.price) < 0:
            continue  # an IOC or FOK limit the trade is worse than
        fok = order.order.time_in_force == TimeInForce.FOK
        claim = Claim(order, tick.price, order.remaining, ZERO, Liquidity.TAKER, fok)
        ranked.append(((0, ZERO, order.seq), claim))
    for order in makers:
        through = order.improvement(tick.price)
        ahead = order.queue_ahead if through == 0 else ZERO
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
        if left == 0:
            break
        available = max(ZERO, EXACT.subtract(left, claim.ahead))
        if claim.all_or_none:
            quantity = claim.cap if claim.cap <= available else ZERO
        else:
            quantity = min(claim.cap, available)
        if quantity > 0:
            fills.append(Allocation(claim.order, claim.price, quantity, claim.liquidity))
            left = EXACT.subtract(left, quantity)
    return fills

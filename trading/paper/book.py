"""The working orders of one instrument, indexed so that a trade costs only the orders it can
concern: the takers, the resting limits it reaches, the stops it triggers.

- orders not live yet wait in a heap by the time they go live (submit time + latency);
- live takers (market orders, triggered stops, IOC and FOK orders) in a list;
- live resting limits by price level, one :class:`Levels` per side;
- live stops that have not triggered, by stop price, one :class:`Stops` per side.
"""

from __future__ import annotations

import heapq
import sys
from bisect import bisect_left, bisect_right, insort
from decimal import Decimal

from core.trading_events import OrderSide
from trading.domain.exact import EXACT
from trading.paper.queue import TradeHistory
from trading.paper.working import ZERO, WorkingOrder

_LAST = sys.maxsize
"""Above every ``seq``: a probe that sorts after every stop at one price."""


class Levels:
    """The live resting limits of one side, by price."""

    def __init__(self, buy: bool) -> None:
        self._buy = buy
        self._prices: list[Decimal] = []
        """Ascending."""
        self._levels: dict[Decimal, list[WorkingOrder]] = {}

    def add(self, order: WorkingOrder) -> None:
        assert order.price is not None
        level = self._levels.get(order.price)
        if level is None:
            insort(self._prices, order.price)
            level = self._levels[order.price] = []
        level.append(order)

    def remove(self, order: WorkingOrder) -> None:
        assert order.price is not None
        level = self._levels[order.price]
        level.remove(order)
        if not level:
            del self._levels[order.price]
            del self._prices[bisect_left(self._prices, order.price)]

    def at(self, price: Decimal) -> list[WorkingOrder]:
        """The orders resting at ``price``."""
        return self._levels.get(price, [])

    def reached(self, trade_price: Decimal) -> list[WorkingOrder]:
        """The orders a trade at ``trade_price`` reaches: at their price or through it."""
        if self._buy:
            prices = self._prices[bisect_left(self._prices, trade_price) :]
        else:
            prices = self._prices[: bisect_right(self._prices, trade_price)]
        return [order for price in prices for order in self._levels[price]]


class Stops:
    """The live stops of one side that have not triggered, by stop price."""

    def __init__(self, buy: bool) -> None:
        self._buy = buy
        self._stops: list[tuple[Decimal, int, WorkingOrder]] = []
        """Ascending by (stop price, seq); ``seq`` is unique, so orders are never compared."""

    def _key(self, order: WorkingOrder) -> tuple[Decimal, int, WorkingOrder]:
        assert order.stop_price is not None
        return (order.stop_price, order.seq, order)

    def add(self, order: WorkingOrder) -> None:
        insort(self._stops, self._key(order))

    def remove(self, order: WorkingOrder) -> None:
        self._stops.remove(self._key(order))

    def triggered(self, trade_price: Decimal) -> list[WorkingOrder]:
        """Take out the stops a trade at ``trade_price`` triggers (a buy stop at or below the
        trade, a sell stop at or above it)."""
        stops = self._stops
        if self._buy:
            cut = bisect_right(stops, (trade_price, _LAST))
            if cut == 0:
                return []
            hit, self._stops = stops[:cut], stops[cut:]
        else:
            cut = bisect_left(stops, (trade_price,))
            if cut == len(stops):
                return []
            self._stops, hit = stops[:cut], stops[cut:]
        return [order for _, _, order in hit]


class Book:
    """The working orders of one instrument, with their time priority (``seq``)."""

    def __init__(self) -> None:
        self.orders: dict[str, WorkingOrder] = {}
        self._seq = 0
        self._pushed = 0
        self._pending: list[tuple[int, int, WorkingOrder]] = []
        """A heap of (live_ts, push number, order); removed orders are skipped when popped."""
        self._takers: list[WorkingOrder] = []
        self._levels = {OrderSide.BUY: Levels(buy=True), OrderSide.SELL: Levels(buy=False)}
        self._stops = {OrderSide.BUY: Stops(buy=True), OrderSide.SELL: Stops(buy=False)}
        self._restored: dict[int, list[WorkingOrder]] = {}
        """Trade id -> the stops it triggered before a restart, handed back already triggered
        (:meth:`add_triggered`), while that trade may come again."""

    def __len__(self) -> int:
        return len(self.orders)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, order: WorkingOrder) -> None:
        """A new order, at the back of time priority; live from ``order.live_ts``."""
        order.seq = self.next_seq()
        self.orders[order.order.order_id] = order
        self._pushed += 1
        heapq.heappush(self._pending, (order.live_ts, self._pushed, order))

    def add_triggered(self, order: WorkingOrder, trade_id: int) -> None:
        """A stop that ``trade_id`` triggered before a restart, handed back as a taker (in the
        order it joined the takers). If that trade comes again and triggers more stops, they
        all queue as that trade triggered them in one go: in the order they were placed."""
        order.triggered = True
        self.add(order)
        self._restored.setdefault(trade_id, []).append(order)

    def remove(self, order: WorkingOrder) -> None:
        del self.orders[order.order.order_id]
        if order.live:
            self.detach(order)
        elif len(self._pending) > 2 * len(self.orders) + 64:
            # orders canceled before going live stay in the heap until their time; when they
            # are most of it (a market without trades), drop them so that it stays bounded
            self._pending = [entry for entry in self._pending if self._holds(entry[2])]
            heapq.heapify(self._pending)

    def _holds(self, order: WorkingOrder) -> bool:
        return self.orders.get(order.order.order_id) is order

    def activate(self, ts: int, history: TradeHistory) -> None:
        """Make live the orders whose time has come by ``ts``, in the order they go live."""
        while self._pending and self._pending[0][0] <= ts:
            _, _, order = heapq.heappop(self._pending)
            if not self._holds(order):
                continue  # canceled before it went live
            order.live = True
            if order.resting:
                self.join_queue(order, history, order.live_ts)
            self.attach(order)

    def takers(self) -> list[WorkingOrder]:
        """The live takers, in time priority."""
        return sorted(self._takers, key=lambda order: order.seq)

    def reached(self, trade_price: Decimal) -> list[WorkingOrder]:
        """The resting limits a trade at ``trade_price`` reaches, of both sides."""
        return [
            *self._levels[OrderSide.BUY].reached(trade_price),
            *self._levels[OrderSide.SELL].reached(trade_price),
        ]

    def trigger(self, trade_price: Decimal, trade_id: int) -> list[WorkingOrder]:
        """The stops a trade at ``trade_price`` triggers, now takers at the back of time
        priority (in the order they were placed), beside the stops this trade triggered
        before a restart (:meth:`add_triggered`), which take their places among them."""
        hit = [
            *self._stops[OrderSide.BUY].triggered(trade_price),
            *self._stops[OrderSide.SELL].triggered(trade_price),
        ]
        before = self._restored_by(trade_id)
        for order in hit:
            order.triggered = True
            self._takers.append(order)
        if before and hit:  # a handed-back stop's seq is where it joined the takers
            group = sorted([*hit, *before], key=_placed)
        else:
            group = sorted(hit, key=lambda order: order.seq)
        for order in group:
            order.seq = self.next_seq()
        hit.sort(key=lambda order: order.seq)
        return hit

    def _restored_by(self, trade_id: int) -> list[WorkingOrder]:
        """The stops handed back as triggered by ``trade_id`` and still held; those of trades
        before it are forgotten (trades come in their ids' order: theirs will not come
        again)."""
        if not self._restored:
            return []
        found = self._restored.pop(trade_id, [])
        for earlier in [key for key in self._restored if key < trade_id]:
            del self._restored[earlier]
        return [order for order in found if self._holds(order)]

    def attach(self, order: WorkingOrder) -> None:
        """Index a live order where it belongs."""
        side = order.order.side
        if order.resting:
            self._levels[side].add(order)
        elif order.waiting_stop:
            self._stops[side].add(order)
        else:
            self._takers.append(order)

    def detach(self, order: WorkingOrder) -> None:
        """Take a live order out of its index (to remove it, or to change it)."""
        side = order.order.side
        if order.resting:
            self._levels[side].remove(order)
        elif order.waiting_stop:
            self._stops[side].remove(order)
        else:
            self._takers.remove(order)

    def join_queue(self, order: WorkingOrder, history: TradeHistory, ts: int) -> None:
        """Estimate the queue ahead of a resting order that joins its price at ``ts``: the
        queue model's estimate, but never less than an earlier paper order of the same side
        at the same price has ahead of it (the estimate cannot overtake time priority)."""
        assert order.price is not None
        ahead = history.queue_ahead(order.price, ts)
        for other in self._levels[order.order.side].at(order.price):
            if other.seq < order.seq:
                ahead = max(ahead, other.queue_ahead)
        order.queue_ahead = ahead


def advance_queue(order: WorkingOrder, trade_price: Decimal, size: Decimal) -> None:
    """A trade at a resting order's price works through the queue ahead of it; a trade
    through its price has taken the whole level, so nothing is ahead any more."""
    through = order.improvement(trade_price)
    if through == 0:
        order.queue_ahead = max(ZERO, EXACT.subtract(order.queue_ahead, size))
    elif through > 0:
        order.queue_ahead = ZERO


def _placed(order: WorkingOrder) -> tuple[int, int, str]:
    """The order in which orders were placed, as a restart hands them back."""
    placed = order.order
    return (placed.ts, placed.account, placed.order_id)

"""The paper venue after a restart, sans I/O: what to hand a fresh matcher so that it holds
what the stored events say the venue held.

The matcher keeps its working orders in memory, so a restart loses them. The stored events
say which orders the venue held (accepted and not ended), how much of each remains, at which
prices, and whether a stop was triggered: each is submitted again as it stands now, live from
just after its last stored event. The consumer of ``md.ticks`` delivers at least once, so after
a crash it feeds again the batch that was cut off; a trade that already filled or triggered an
order is before that order's last event, so it cannot fill it twice, while an order it had not
touched yet (or whose report was lost in the crash) meets it as in a run without the crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from core.trading_events import OrderStatus, OrderSubmitted
from trading.domain.orders import Order
from trading.service.book import Book
from trading.service.saga import submission


class Working(NamedTuple):
    """One order to hand the venue again: as it stands, the time to submit it at, and the
    trade that triggered it (a stop handed back as a market order; ``None`` otherwise)."""

    order: OrderSubmitted
    ts: int
    triggered_by: int | None


def working_orders(books: Iterable[Book]) -> list[Working]:
    """Each order the venue held, as it stands, with the time to submit it at: its last
    event's time, and just after it for an order that a trade has filled or triggered (so
    that it takes no part again in that trade), in the order the venue queued them: when they
    were submitted, a triggered stop when its trade printed (it joined the takers then). A
    stop names the trade that triggered it: if that trade comes again and triggers stops
    placed before it, the venue queues them ahead of it, as in a run without the crash."""
    held = [order for book in books for order in book.orders.values() if order.is_open]
    return [
        Working(
            submission(order),
            order.ts_last + (order.status is not OrderStatus.ACCEPTED),
            order.triggered_by,
        )
        for order in sorted(held, key=_queued)
    ]


def _queued(order: Order) -> tuple[int, int, int, str]:
    joined = order.ts_submitted if order.ts_triggered is None else order.ts_triggered
    return (joined, order.ts_submitted, order.account, order.order_id)

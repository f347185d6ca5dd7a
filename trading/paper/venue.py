"""The one venue interface: what the trading service asks of an execution venue, and what
comes back.

A venue takes an accepted order, a cancel or an amend, and answers with *reports*: plain,
frozen values. The order reports are the order events of :mod:`core.trading_events`
(``OrderAccepted``, ``OrderRejected``, ``OrderFilled``, ``OrderCanceled``, ``OrderExpired``,
``OrderTriggered``, ``OrderUpdated``), so that the service folds a report into its order as it
is. A cancel or an amend that the venue cannot carry out does not change the order; it comes
back as :class:`CancelRefused` or :class:`AmendRefused`, with our code.

Reports come back from the calls themselves and from the venue's own progress: the paper
venue reports fills, triggers and the ends of immediate-or-cancel orders from
:meth:`~trading.paper.matcher.PaperMatcher.on_tick`; a live venue would report them from its
connection. Every call takes ``ts``, the caller's time in UTC nanoseconds: a venue never reads
a clock, so a replay gives the same reports.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Protocol

import msgspec

from core.trading_events import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderTriggered,
    OrderUpdated,
)


class CancelRefused(msgspec.Struct, frozen=True, kw_only=True):
    """A cancel the venue could not carry out; the order is as it was."""

    account: int
    order_id: str
    code: str
    message: str
    ts: int


class AmendRefused(msgspec.Struct, frozen=True, kw_only=True):
    """An amend the venue could not carry out; the order is as it was."""

    account: int
    order_id: str
    code: str
    field: str | None
    message: str
    ts: int


VenueReport = (
    OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCanceled
    | OrderExpired
    | OrderTriggered
    | OrderUpdated
    | CancelRefused
    | AmendRefused
)

# Our codes for what a venue refuses.
DUPLICATE_ORDER: Final = "duplicate-order"
"""A submit whose order id is already working at the venue."""
TOO_MANY_ORDERS: Final = "too-many-orders"
"""A submit beyond the venue's bound on working orders."""
INVALID_ORDER: Final = "invalid-order"
"""A submit whose prices do not fit its type (a limit without a price, ...)."""
UNKNOWN_ORDER: Final = "unknown-order"
"""A cancel or amend of an order that is not working (never seen, filled, or ended)."""
INVALID_AMEND: Final = "invalid-amend"
"""An amend that changes nothing, names a field the order does not have, or a bad value."""
QUANTITY_NOT_ABOVE_FILLED: Final = "quantity-not-above-filled"
"""An amend to a quantity at or below what has already filled."""

# The reasons an ``OrderCanceled`` gives.
CANCEL_REQUESTED: Final = "requested"
"""The owner canceled."""
IOC_REMAINDER: Final = "ioc-remainder"
"""What an immediate-or-cancel order's trade did not fill."""
FOK_UNFILLED: Final = "fok-unfilled"
"""A fill-or-kill order its trade could not fill entirely."""


class Venue(Protocol):
    """An execution venue, paper or live."""

    def submit(self, order: OrderSubmitted, ts: int) -> list[VenueReport]:
        """Route an order the service has accepted (risk-checked, funds reserved): the
        answer starts with ``OrderAccepted`` or ``OrderRejected``."""
        ...

    def cancel(self, account: int, order_id: str, ts: int) -> list[VenueReport]:
        """Cancel a working order: ``OrderCanceled``, or ``CancelRefused``."""
        ...

    def amend(
        self,
        account: int,
        order_id: str,
        ts: int,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> list[VenueReport]:
        """Change a working order's quantity (the new total), price or stop price:
        ``OrderUpdated``, or ``AmendRefused``."""
        ...

"""The order saga, sans I/O: what happens to an order next, decided from the stored state.

Every step is an append of events to the account aggregate (:mod:`trading.service.book`), and
the saga's state is nothing but those events: an order's status and whether it still holds a
reservation say where its saga stands (:func:`next_step`). The shell asks this module what to
append, appends it, and asks again; after a crash it asks the same questions of what was
stored, so a restart continues every saga where it stopped.

- submit: ``order-submitted`` with ``funds-reserved`` (risk passed) or ``order-denied``;
- route: ``order-accepted``, or ``order-rejected`` (refused, or timed out) with its release;
- settle: each ``order-filled`` and ``order-triggered``; ``order-canceled`` at its end; the
  step that ends the order carries the release of what it still holds (:func:`with_release`);
- release: ``funds-released`` of what an ended order still holds, on its own only for a
  stream stored before releases rode with the end (:func:`next_step` still finds them).

A saga ends (:attr:`Step.DONE`) in exactly one stored append: the one that leaves its order
terminal and holding nothing. :func:`ended` names the sagas an append ends with their
:class:`Outcome`; asked of the books before and after an append (never of a replay), it
counts each saga once, whatever restarts came between.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import Final, Protocol, TypeVar

import msgspec

from core.trading_events import (
    FundsDeposited,
    FundsReleased,
    FundsReserved,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
    OrderType,
    TradingEvent,
)
from trading.domain.accounts import AccountError, reservation_for
from trading.domain.exact import EXACT
from trading.domain.orders import AmendRequest, Order, OrderRequest, amend
from trading.domain.risk import DEFAULT_LIMITS, RiskLimits, RiskRefused, check
from trading.service.book import Book, apply

CLIENT_ORDER_ID_REUSED: Final = "client-order-id-reused"
UNKNOWN_ORDER: Final = "unknown-order"
VENUE_TIMEOUT: Final = "venue-timeout"
UNCOVERED_FILL: Final = "uncovered-fill"
"""Why an order is canceled when the account cannot pay a fill (a market order filled beyond
the band it reserved for, and no free cash left to cover it)."""


class ServiceError(Exception):
    """A command the service refuses, with our code (``client-order-id-reused``,
    ``unknown-order``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Step(enum.Enum):
    ROUTE = "route"
    """Submitted and reserved: send it to the venue."""
    RELEASE = "release"
    """Ended while it still holds a reservation: free it."""
    WAIT = "wait"
    """At the venue: fills, a trigger or its end come from trades or commands."""
    DONE = "done"


def next_step(book: Book, order_id: str) -> Step:
    """Where the saga of ``order_id`` stands, from what is stored."""
    order = book.orders[order_id]
    if order.status is OrderStatus.SUBMITTED:
        return Step.ROUTE
    if order.is_open:
        return Step.WAIT
    if order_id in book.account.reservations:
        return Step.RELEASE
    return Step.DONE


class Outcome(enum.StrEnum):
    """How a saga ended (the ``outcome`` label of ``mdp_trading_saga_outcomes_total``)."""

    FILLED = "filled"
    PARTIALLY_FILLED = "partially-filled"
    """Canceled or expired after some fills: the rest of its reservation released."""
    CANCELED = "canceled"
    """Canceled unfilled (by the client, the kill switch, an IOC or FOK order's end, an
    uncovered fill): its reservation released."""
    EXPIRED = "expired"
    REJECTED = "rejected"
    """The venue refused it: the compensation released its reservation."""
    TIMED_OUT = "timed-out"
    """The venue did not answer (``venue-timeout``): rejected and released likewise."""
    DENIED = "denied"
    """The risk check refused it: nothing was reserved."""


def outcome(order: Order) -> Outcome:
    """How the saga of the terminal ``order`` ended."""
    status = order.status
    if status is OrderStatus.FILLED:
        return Outcome.FILLED
    if status is OrderStatus.DENIED:
        return Outcome.DENIED
    if status is OrderStatus.REJECTED:
        return Outcome.TIMED_OUT if order.reason_code == VENUE_TIMEOUT else Outcome.REJECTED
    if order.filled_quantity > 0:
        return Outcome.PARTIALLY_FILLED
    return Outcome.EXPIRED if status is OrderStatus.EXPIRED else Outcome.CANCELED


def ended(before: Book, after: Book, events: Sequence[TradingEvent]) -> list[Outcome]:
    """The outcomes of the sagas that ``events`` (one append, taking ``before`` to ``after``)
    end: their order is done in ``after`` and was not in ``before``."""
    found: list[Outcome] = []
    of_orders = (e for e in events if isinstance(e, OrderEvent | FundsReserved | FundsReleased))
    for order_id in dict.fromkeys(e.order_id for e in of_orders):
        if order_id not in after.orders or next_step(after, order_id) is not Step.DONE:
            continue
        if order_id in before.orders and next_step(before, order_id) is Step.DONE:
            continue
        found.append(outcome(after.orders[order_id]))
    return found


def open_sagas(book: Book) -> list[str]:
    """The orders whose saga has a step to take now (after a crash: every one of them)."""
    return [
        order_id
        for order_id in book.orders
        if next_step(book, order_id) in (Step.ROUTE, Step.RELEASE)
    ]


# -- submit --------------------------------------------------------------------------------------


def existing(book: Book, request: OrderRequest) -> Order | None:
    """The order this client order id already made (``None``: a new one); the same id with
    other content is ``client-order-id-reused``."""
    first = book.submissions.get(request.client_order_id)
    if first is None:
        return None
    if request.submitted(first.order_id, first.ts) != first:
        raise ServiceError(
            CLIENT_ORDER_ID_REUSED,
            f"client order id {request.client_order_id!r} was used for another order",
        )
    return book.orders[first.order_id]


def submit(
    book: Book,
    request: OrderRequest,
    order_id: str,
    now: int,
    last_price: Decimal | None,
    limits: RiskLimits = DEFAULT_LIMITS,
) -> list[TradingEvent]:
    """The first step: the risk check on the account as it is before this order, then the
    order with its reservation, or the order denied."""
    submitted = request.submitted(order_id, now)
    try:
        check(request, book.account, last_price, now, limits)
    except RiskRefused as refused:
        denied = OrderDenied(
            account=request.account,
            order_id=order_id,
            reason_code=refused.code,
            field=refused.field,
            message=refused.message,
            ts=now,
        )
        return [submitted, denied]
    needed = reservation_for(request, last_price, limits.price_band_pct, limits.taker_fee)
    reserved = book.account.adjust(order_id, needed, now)
    assert reserved is not None
    return [submitted, reserved]


class OfAccount(Protocol):
    """What names its account (a venue's report)."""

    @property
    def account(self) -> int: ...


R = TypeVar("R", bound=OfAccount)


def per_account(reports: Sequence[R]) -> list[list[R]]:
    """``reports`` of one trade by account, each account's in the venue's order (an account's
    settling steps depend on each other; different accounts' do not)."""
    accounts: dict[int, list[R]] = {}
    for report in reports:
        accounts.setdefault(report.account, []).append(report)
    return list(accounts.values())


def submission(order: Order) -> OrderSubmitted:
    """The ``order-submitted`` of ``order`` as the venue must hold it now: what remains of it,
    at its current prices, a market order once triggered."""
    triggered = order.status is OrderStatus.TRIGGERED
    return OrderSubmitted(
        account=order.account,
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        instrument=order.instrument,
        side=order.side,
        type=OrderType.MARKET if triggered else order.type,
        quantity=order.remaining,
        price=order.price,
        stop_price=None if triggered else order.stop_price,
        time_in_force=order.time_in_force,
        ts=order.ts_submitted,
    )


# -- route, settle, release ----------------------------------------------------------------------


def timed_out(book: Book, order_id: str, now: int) -> list[TradingEvent]:
    """The compensation of a venue that did not answer: the order is rejected (the shell asks
    the venue to cancel it, in case it holds it after all)."""
    order = book.orders[order_id]
    message = "the venue did not answer in time"
    return [
        OrderRejected(
            account=order.account,
            order_id=order_id,
            reason_code=VENUE_TIMEOUT,
            message=message,
            ts=now,
        )
    ]


def settled(book: Book, report: OrderEvent) -> list[TradingEvent]:
    """The events of one venue report about an order (a fill, a trigger, its end); none for
    a report of an order that is no longer open (a repeat). A fill gets our fill id (the
    order id and the trade id: the same after a restart); a fill the account cannot pay ends
    the order instead (``uncovered-fill``)."""
    order = book.orders.get(report.order_id)
    if order is None or not order.is_open:
        return []
    if not isinstance(report, OrderFilled):
        return [report]
    fill = msgspec.structs.replace(report, fill_id=f"{order.order_id}-{report.trade_id}")
    try:
        book.account.apply(fill)
    except AccountError:
        message = f"the account cannot pay the fill of trade {report.trade_id}"
        return [
            OrderCanceled(
                account=order.account,
                order_id=order.order_id,
                reason=f"{UNCOVERED_FILL}: {message}",
                ts=report.ts,
            )
        ]
    return [fill]


def after(book: Book, events: Sequence[TradingEvent]) -> Book:
    """``book`` with ``events`` applied (what the step will store, before it is stored)."""
    for event in events:
        book = apply(book, event)
    return book


def with_release(
    book: Book, order_id: str, events: Sequence[TradingEvent], now: int
) -> list[TradingEvent]:
    """``events`` of a step of ``order_id``'s saga, and when they end the order while it holds
    a reservation, its release too: one append where there were two, and no stored state
    between an order's end and its release for a crash to leave."""
    after_them = after(book, events)
    if not events or order_id not in after_them.orders:
        return list(events)
    if next_step(after_them, order_id) is not Step.RELEASE:
        return list(events)
    return [*events, *release(after_them, order_id, now)]


def release(book: Book, order_id: str, now: int) -> list[TradingEvent]:
    """The last step (and the compensation of a denial, reject, timeout or cancel): free what
    the ended order still holds."""
    released = book.account.release(order_id, now)
    return [] if released is None else [released]


# -- commands ------------------------------------------------------------------------------------


def known_order(book: Book, order_id: str) -> Order:
    order = book.orders.get(order_id)
    if order is None:
        raise ServiceError(UNKNOWN_ORDER, f"no order {order_id!r} in this account")
    return order


def amended(
    book: Book,
    request: AmendRequest,
    now: int,
    last_price: Decimal | None,
    limits: RiskLimits = DEFAULT_LIMITS,
) -> list[TradingEvent]:
    """The ``order-updated`` of an amend and the change of its reservation (refused as
    ``buying-power`` when the account cannot hold the larger order)."""
    order = known_order(book, request.order_id)
    update = amend(order, request, now)
    rest = EXACT.subtract(update.quantity, order.filled_quantity)
    as_new = OrderRequest(
        account=order.account,
        client_order_id=order.client_order_id,
        instrument=order.instrument,
        side=order.side,
        type=order.type,
        quantity=rest,
        price=update.price,
        stop_price=update.stop_price,
        time_in_force=order.time_in_force,
    )
    needed = reservation_for(as_new, last_price, limits.price_band_pct, limits.taker_fee)
    change = book.account.adjust(order.order_id, needed, now)
    if change is None:
        return [update]
    try:
        book.account.apply(change)
    except AccountError:
        raise RiskRefused(
            "buying-power", "quantity", f"the amended order needs {needed.amount} {needed.currency}"
        ) from None
    return [update, change]


def deposited(account: int, currency: str, amount: Decimal, now: int) -> list[TradingEvent]:
    return [FundsDeposited(account=account, currency=currency, amount=amount, ts=now)]

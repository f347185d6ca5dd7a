"""The paper venue's matcher: accepted orders and real trades in, venue reports out.

Sans-I/O and deterministic: no clock, no randomness, no I/O. Time comes from the calls (their
``ts``) and from the trades (``Tick.ts_event``); the same calls and ticks in the same order
give the same reports. The rules (see ``docs/trading.md``, "Paper venue"):

- an order takes part in trades with ``ts_event >= its submit ts + latency``;
- a good-till-cancel limit rests: it fills at its own price (maker) when a trade prints
  through it (a buy: below its price), and on a trade at its price only with what the
  traded size there since it rested has beyond the queue ahead of it (the queue model);
- a market order takes (taker) the next trades at their prices; an IOC or FOK order
  (limit or market) meets exactly one trade, the next one, and ends there (an IOC limit
  takes it only at its price or better; a FOK only when what is left of that trade covers
  it entirely);
- a stop-market triggers on a trade at or through its stop and then takes the trades
  after that one, as a market order with its time in force;
- one trade is shared among the orders it fills in priority order and never gives more
  than its size; amending the price or raising the quantity sends an order to the back.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from core.ticks import Tick
from core.trading_events import (
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderTriggered,
    OrderType,
    OrderUpdated,
    TimeInForce,
    amount_problem,
)
from trading.domain.exact import EXACT
from trading.domain.instruments import UnknownInstrumentError, spec_of
from trading.paper import venue
from trading.paper.allocation import Allocation, allocate, claims
from trading.paper.book import Book, advance_queue
from trading.paper.fees import fee
from trading.paper.queue import TradeHistory
from trading.paper.settings import PaperSettings
from trading.paper.venue import AmendRefused, CancelRefused, VenueReport
from trading.paper.working import WorkingOrder


def _price_problem(order: OrderSubmitted) -> str | None:
    """Why the order's quantity and prices do not fit its type, or None."""
    problem = amount_problem(order.quantity)
    if problem is not None:
        return f"the quantity {problem}"
    wanted = {
        OrderType.LIMIT: (True, False),
        OrderType.MARKET: (False, False),
        OrderType.STOP_MARKET: (False, True),
    }[order.type]
    for name, needed, value in zip(
        ("price", "stop_price"), wanted, (order.price, order.stop_price), strict=True
    ):
        if needed and value is None:
            return f"a {order.type.value} order needs a {name}"
        if not needed and value is not None:
            return f"a {order.type.value} order has no {name}"
        problem = None if value is None else amount_problem(value)
        if problem is not None:
            return f"the {name} {problem}"
    return None


class PaperMatcher:
    """The paper venue (a :class:`~trading.paper.venue.Venue`), fed with trades by
    :meth:`on_tick`; one matcher serves any number of instruments."""

    def __init__(self, settings: PaperSettings | None = None) -> None:
        self._settings = settings or PaperSettings()
        self._orders: dict[str, WorkingOrder] = {}
        self._books: dict[str, Book] = {}
        self._histories: dict[str, TradeHistory] = {}
        self._accepted = 0

    # -- the venue interface ---------------------------------------------------------------

    def submit(
        self, order: OrderSubmitted, ts: int, *, triggered_by: int | None = None
    ) -> list[VenueReport]:
        """Accept ``order`` (it becomes live at ``ts + latency``) or reject it with our code.
        ``triggered_by``: a stop handed back after a restart (as a market order) that the
        trade of that id had triggered (:meth:`~trading.paper.book.Book.add_triggered`)."""
        code, problem = self._submit_problem(order)
        if problem is not None:
            return [
                OrderRejected(
                    account=order.account,
                    order_id=order.order_id,
                    reason_code=code,
                    message=problem,
                    ts=ts,
                )
            ]
        self._accepted += 1
        working = WorkingOrder(
            order=order,
            venue_order_id=f"paper-{self._accepted}",
            fee_currency=spec_of(order.instrument).quote,
            live_ts=ts + self._settings.latency_ns,
            quantity=order.quantity,
            price=order.price,
            stop_price=order.stop_price,
        )
        self._orders[order.order_id] = working
        book = self._books.setdefault(order.instrument, Book())
        if triggered_by is None:
            book.add(working)
        else:
            book.add_triggered(working, triggered_by)
        return [
            OrderAccepted(
                account=order.account,
                order_id=order.order_id,
                venue_order_id=working.venue_order_id,
                ts=ts,
            )
        ]

    def cancel(self, account: int, order_id: str, ts: int) -> list[VenueReport]:
        """Cancel a working order of ``account`` at once."""
        working = self._find(account, order_id)
        if working is None:
            message = f"no working order {order_id!r} for this account"
            return [
                CancelRefused(
                    account=account,
                    order_id=order_id,
                    code=venue.UNKNOWN_ORDER,
                    message=message,
                    ts=ts,
                )
            ]
        self._remove(working)
        return [
            OrderCanceled(account=account, order_id=order_id, reason=venue.CANCEL_REQUESTED, ts=ts)
        ]

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
        """Change a working order. A new price or a larger quantity sends it to the back of
        its queue (a new time priority and a new queue estimate); a smaller quantity keeps
        its place."""
        working = self._find(account, order_id)
        refusal: tuple[str, str | None, str] | None
        if working is None:
            refusal = (venue.UNKNOWN_ORDER, None, f"no working order {order_id!r} for this account")
        else:
            refusal = _amend_problem(working, quantity, price, stop_price)
        if refusal is not None:
            code, field, message = refusal
            return [
                AmendRefused(
                    account=account,
                    order_id=order_id,
                    code=code,
                    field=field,
                    message=message,
                    ts=ts,
                )
            ]
        assert working is not None
        keeps_place = (price is None or price == working.price) and (
            quantity is None or quantity <= working.quantity
        )
        book = self._books[working.order.instrument]
        if working.live:
            book.detach(working)
        working.quantity = working.quantity if quantity is None else quantity
        working.price = working.price if price is None else price
        working.stop_price = working.stop_price if stop_price is None else stop_price
        if not keeps_place:
            working.seq = book.next_seq()
            if working.live and working.resting:
                book.join_queue(working, self._histories[working.order.instrument], ts)
        if working.live:
            book.attach(working)
        return [
            OrderUpdated(
                account=account,
                order_id=order_id,
                quantity=working.quantity,
                price=working.price,
                stop_price=working.stop_price,
                ts=ts,
            )
        ]

    # -- the trades ------------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> list[VenueReport]:
        """Match one trade against the working orders of its instrument."""
        history = self._histories.get(tick.instrument)
        if history is None:
            history = self._histories[tick.instrument] = TradeHistory(self._settings.queue)
        book = self._books.get(tick.instrument)
        reports: list[VenueReport] = []
        if book:
            book.activate(tick.ts_event, history)
            takers, makers = book.takers(), book.reached(tick.price)
            fills = allocate(claims(takers, makers, tick), tick.size)
            reports += [self._filled(fill, tick) for fill in fills]
            for working in makers:
                advance_queue(working, tick.price, tick.size)
            for working in [*takers, *makers]:
                if working.remaining == 0:
                    self._remove(working)
                elif working.immediate:
                    reports.append(self._ended_unfilled(working, tick.ts_event))
            for working in book.trigger(tick.price, tick.trade_id):
                order = working.order
                reports.append(
                    OrderTriggered(
                        account=order.account,
                        order_id=order.order_id,
                        ts=tick.ts_event,
                        trade_id=tick.trade_id,
                    )
                )
        history.add(tick.ts_event, tick.price, tick.size)
        return reports

    def feed(self, ticks: Iterable[Tick]) -> list[VenueReport]:
        """:meth:`on_tick` for each of ``ticks`` in turn; the reports of all of them."""
        return [report for tick in ticks for report in self.on_tick(tick)]

    # -- inside ----------------------------------------------------------------------------

    def _submit_problem(self, order: OrderSubmitted) -> tuple[str, str | None]:
        if order.order_id in self._orders:
            return venue.DUPLICATE_ORDER, f"order {order.order_id!r} is already working"
        if len(self._orders) >= self._settings.max_open_orders:
            limit = self._settings.max_open_orders
            return venue.TOO_MANY_ORDERS, f"the paper venue holds at most {limit} working orders"
        try:
            spec_of(order.instrument)
        except UnknownInstrumentError as exc:
            return exc.code, str(exc)
        return venue.INVALID_ORDER, _price_problem(order)

    def _find(self, account: int, order_id: str) -> WorkingOrder | None:
        working = self._orders.get(order_id)
        if working is None or working.order.account != account:
            return None
        return working

    def _remove(self, working: WorkingOrder) -> None:
        del self._orders[working.order.order_id]
        self._books[working.order.instrument].remove(working)

    def _filled(self, fill: Allocation, tick: Tick) -> OrderFilled:
        working = fill.order
        working.filled = EXACT.add(working.filled, fill.quantity)
        working.fills += 1
        settings = self._settings
        bps = (
            settings.maker_fee_bps if fill.liquidity == Liquidity.MAKER else settings.taker_fee_bps
        )
        order = working.order
        return OrderFilled(
            account=order.account,
            order_id=order.order_id,
            fill_id=f"{working.venue_order_id}-{working.fills}",
            instrument=order.instrument,
            side=order.side,
            price=fill.price,
            quantity=fill.quantity,
            fee=fee(fill.price, fill.quantity, bps, settings.fee_places),
            fee_currency=working.fee_currency,
            liquidity=fill.liquidity,
            trade_id=tick.trade_id,
            ts=tick.ts_event,
        )

    def _ended_unfilled(self, working: WorkingOrder, ts: int) -> OrderCanceled:
        """The end of an IOC or FOK order that its one trade did not fill entirely."""
        self._remove(working)
        order = working.order
        fok = order.time_in_force == TimeInForce.FOK
        reason = venue.FOK_UNFILLED if fok else venue.IOC_REMAINDER
        return OrderCanceled(account=order.account, order_id=order.order_id, reason=reason, ts=ts)


def _amend_problem(
    working: WorkingOrder,
    quantity: Decimal | None,
    price: Decimal | None,
    stop_price: Decimal | None,
) -> tuple[str, str | None, str] | None:
    """Why an amend cannot be carried out: (code, field, message), or None."""
    if quantity is None and price is None and stop_price is None:
        return (
            venue.INVALID_AMEND,
            None,
            "an amend changes the quantity, the price or the stop price",
        )
    if working.order.type == OrderType.MARKET or working.triggered:
        return venue.INVALID_AMEND, None, "a market order or a triggered stop cannot be amended"
    for name, value in (("quantity", quantity), ("price", price), ("stop_price", stop_price)):
        problem = None if value is None else amount_problem(value)
        if problem is not None:
            return venue.INVALID_AMEND, name, f"the {name} {problem}"
    if quantity is not None and quantity <= working.filled:
        message = f"the quantity must be above the {working.filled} already filled"
        return venue.QUANTITY_NOT_ABOVE_FILLED, "quantity", message
    kind = working.order.type
    if price is not None and kind != OrderType.LIMIT:
        return venue.INVALID_AMEND, "price", f"a {kind.value} order has no price"
    if stop_price is not None and kind != OrderType.STOP_MARKET:
        return venue.INVALID_AMEND, "stop_price", f"a {kind.value} order has no stop price"
    return None

"""The saga's core without a database: where an order's saga stands is read off its events,
and the venue is rebuilt from them as the orders stand."""

from __future__ import annotations

from decimal import Decimal

from core.trading_events import (
    FundsDeposited,
    Liquidity,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
    OrderType,
    TradingEvent,
)
from tests.trading.service.scenario import ACCOUNT, BUY, LIMIT, SELL, STOP, XBT, order
from trading.domain.orders import OrderRequest
from trading.service import saga, venue_state
from trading.service.book import Book, apply
from trading.service.saga import Step

D = Decimal


def then(book: Book | None, *events: TradingEvent) -> Book:
    for event in events:
        book = apply(book, event)
    assert book is not None
    return book


def funded() -> Book:
    return then(
        None,
        FundsDeposited(account=ACCOUNT, currency="USDT", amount=D(1000), ts=1),
        FundsDeposited(account=ACCOUNT, currency="XBT", amount=D(1), ts=1),
    )


def placed(book: Book, request: OrderRequest, order_id: str, last: str = "100") -> Book:
    """``book`` after the first step of ``request``'s saga (at time 10)."""
    return then(book, *saga.submit(book, request, order_id, 10, D(last)))


def accepted(order_id: str, ts: int = 11) -> OrderAccepted:
    return OrderAccepted(account=ACCOUNT, order_id=order_id, venue_order_id="p", ts=ts)


def fill(order_id: str, quantity: str, trade_id: int, ts: int) -> OrderFilled:
    return OrderFilled(
        account=ACCOUNT, order_id=order_id, fill_id=f"{order_id}-{trade_id}", instrument=XBT,
        side=BUY, price=D(99), quantity=D(quantity), fee=D(0), fee_currency="USDT",
        liquidity=Liquidity.MAKER, trade_id=trade_id, ts=ts,
    )  # fmt: skip


def test_the_step_of_a_saga_follows_its_events() -> None:
    book = funded()
    book = then(
        book, *saga.submit(book, order("a", BUY, LIMIT, "2", price=D(99)), "a1", 10, D(100))
    )
    assert saga.next_step(book, "a1") is Step.ROUTE
    assert saga.open_sagas(book) == ["a1"]
    at_venue = then(book, accepted("a1"))
    assert saga.next_step(at_venue, "a1") is Step.WAIT
    assert saga.open_sagas(at_venue) == []
    rejected = apply(
        book, OrderRejected(account=ACCOUNT, order_id="a1", reason_code="x", message="", ts=11)
    )
    assert saga.next_step(rejected, "a1") is Step.RELEASE
    released = then(rejected, *saga.release(rejected, "a1", 12))
    assert saga.next_step(released, "a1") is Step.DONE
    assert released.account.reservations == {}


def test_a_denied_order_has_nothing_to_do() -> None:
    book = placed(funded(), order("b", BUY, LIMIT, "100", price=D(99)), "b1")
    assert book.orders["b1"].reason_code == "buying-power"
    assert saga.next_step(book, "b1") is Step.DONE


def test_a_repeated_report_of_an_order_that_ended_is_dropped() -> None:
    book = funded()
    book = then(
        book, *saga.submit(book, order("a", BUY, LIMIT, "1", price=D(99)), "a1", 10, D(100))
    )
    book = then(book, accepted("a1"))
    report = fill("a1", "1", 5, 12)
    (settled,) = saga.settled(book, report)
    book = apply(book, settled)
    assert saga.settled(book, report) == []


def test_the_venue_is_rebuilt_with_what_remains_and_a_triggered_stop_as_a_market_order() -> None:
    book = funded()
    for request, order_id in [
        (order("a", BUY, LIMIT, "1", price=D(99)), "a1"),
        (order("s", SELL, STOP, "0.5", stop_price=D(96)), "s1"),
        (order("r", BUY, LIMIT, "1", price=D(98)), "r1"),
    ]:
        for event in saga.submit(book, request, order_id, 10, D(100)):
            book = apply(book, event)
    for order_id in ("a1", "s1"):
        book = apply(
            book, OrderAccepted(account=ACCOUNT, order_id=order_id, venue_order_id="p", ts=11)
        )
    book = apply(book, fill("a1", "0.25", 7, 20))
    book = apply(book, OrderTriggered(account=ACCOUNT, order_id="s1", ts=30, trade_id=8))
    rebuilt = {w.order.order_id: w for w in venue_state.working_orders([book])}
    assert set(rebuilt) == {"a1", "s1"}  # r1 was never accepted: it is routed, not rebuilt
    a, a_ts, a_trigger = rebuilt["a1"]
    assert (a.quantity, a.price, a.type, a_ts, a_trigger) == (
        D("0.75"),
        D(99),
        OrderType.LIMIT,
        21,
        None,
    )
    s, s_ts, s_trigger = rebuilt["s1"]
    assert (s.type, s.stop_price, s.quantity, s_ts) == (OrderType.MARKET, None, D("0.5"), 31)
    assert s_trigger == 8  # the trade that triggered it: if it comes again, stops queue as placed


def test_one_trades_reports_are_grouped_by_account_each_in_the_venues_order() -> None:
    reports = [
        OrderTriggered(account=1, order_id="a", ts=1),
        OrderTriggered(account=2, order_id="b", ts=1),
        OrderTriggered(account=1, order_id="c", ts=1),
        OrderTriggered(account=3, order_id="d", ts=1),
        OrderTriggered(account=2, order_id="e", ts=1),
    ]
    grouped = saga.per_account(reports)
    assert [[r.order_id for r in group] for group in grouped] == [["a", "c"], ["b", "e"], ["d"]]
    assert saga.per_account([]) == []

"""The paper matcher's rules, one by one, on small hand-made trade sequences."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from core.trading_events import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderTriggered,
    OrderType,
    OrderUpdated,
    TimeInForce,
)
from trading.paper import venue
from trading.paper.matcher import PaperMatcher
from trading.paper.settings import PaperSettings, QueueModel
from trading.paper.venue import AmendRefused, CancelRefused, Venue

from .factories import ACCOUNT, INSTRUMENT, SECOND, T0, fills, kinds, order, trade

D = Decimal


def matcher(**settings: object) -> PaperMatcher:
    return PaperMatcher(PaperSettings(**settings))  # type: ignore[arg-type]


def test_the_matcher_is_a_venue() -> None:
    paper: Venue = PaperMatcher()
    assert isinstance(paper.submit(order("a", price="100"), T0)[0], OrderAccepted)


def test_submit_answers_accepted_with_a_venue_order_id() -> None:
    paper = PaperMatcher()
    (first,) = paper.submit(order("a", price="100"), T0)
    (second,) = paper.submit(order("b", price="100"), T0 + 5)
    assert first == OrderAccepted(account=ACCOUNT, order_id="a", venue_order_id="paper-1", ts=T0)
    assert isinstance(second, OrderAccepted)
    assert (second.venue_order_id, second.ts) == ("paper-2", T0 + 5)


# -- limit orders -----------------------------------------------------------------------------


def test_buy_limit_fills_at_its_price_when_a_trade_prints_below_it() -> None:
    paper = PaperMatcher()
    paper.submit(order("a", "buy", "1", "100"), T0)
    assert paper.on_tick(trade(1, "100.5", "5")) == []
    assert fills(paper.on_tick(trade(2, "99", "0.4"))) == [("a", 2, "100", "0.4", "maker")]


def test_sell_limit_fills_at_its_price_when_a_trade_prints_above_it() -> None:
    paper = PaperMatcher()
    paper.submit(order("a", "sell", "1", "100"), T0)
    assert paper.on_tick(trade(1, "99.5", "5")) == []
    assert fills(paper.on_tick(trade(2, "101", "3"))) == [("a", 2, "100", "1", "maker")]


def test_a_touch_fills_only_what_trades_beyond_the_queue_ahead() -> None:
    paper = PaperMatcher()  # the queue ahead: all that traded at the price in the last 60 s
    paper.feed([trade(1, "100", "0.3"), trade(2, "100", "0.2"), trade(3, "101", "9")])
    paper.submit(order("a", "buy", "1", "100"), T0 + 4 * SECOND)
    assert paper.on_tick(trade(5, "100", "0.4")) == []  # 0.5 ahead; 0.1 left ahead
    assert fills(paper.on_tick(trade(6, "100", "0.25"))) == [("a", 6, "100", "0.15", "maker")]
    assert fills(paper.on_tick(trade(7, "100", "0.25"))) == [("a", 7, "100", "0.25", "maker")]


def test_the_queue_counts_the_look_back_only_and_scales_by_the_fraction() -> None:
    model = QueueModel(lookback_ns=10 * SECOND, fraction=D("0.5"))
    paper = matcher(queue=model)
    # the trade at 1 s is outside [10 s, 20 s); those at 12 s and 15 s count: 0.5 * 0.8 = 0.4
    paper.feed(
        [trade(1, "100", "5", at=1), trade(2, "100", "0.6", at=12), trade(3, "100", "0.2", at=15)]
    )
    paper.submit(order("a", "buy", "1", "100"), T0 + 20 * SECOND)
    assert fills(paper.on_tick(trade(4, "100", "0.5", at=21))) == [("a", 4, "100", "0.1", "maker")]


def test_a_touch_at_a_price_that_never_traded_fills_at_once() -> None:
    paper = PaperMatcher()
    paper.on_tick(trade(1, "101", "1"))
    paper.submit(order("a", "sell", "1", "100.5"), T0 + 2 * SECOND)
    assert fills(paper.on_tick(trade(3, "100.5", "0.3"))) == [("a", 3, "100.5", "0.3", "maker")]


def test_a_trade_through_the_price_clears_the_queue_ahead() -> None:
    paper = PaperMatcher()
    paper.on_tick(trade(1, "100", "10"))
    paper.submit(order("a", "buy", "1", "100"), T0 + 2 * SECOND)
    assert fills(paper.on_tick(trade(3, "99.9", "0.1"))) == [("a", 3, "100", "0.1", "maker")]
    # the level traded through: the next touch fills at once although 10 stood ahead
    assert fills(paper.on_tick(trade(4, "100", "0.2"))) == [("a", 4, "100", "0.2", "maker")]


def test_a_limit_order_stays_until_filled_across_trades() -> None:
    paper = PaperMatcher()
    paper.submit(order("a", "buy", "1", "100"), T0)
    got = paper.feed([trade(1, "99", "0.5"), trade(2, "98", "0.3"), trade(3, "99", "0.5")])
    assert fills(got) == [
        ("a", 1, "100", "0.5", "maker"),
        ("a", 2, "100", "0.3", "maker"),
        ("a", 3, "100", "0.2", "maker"),
    ]
    assert paper.on_tick(trade(4, "97", "5")) == []  # filled: no longer working


# -- market orders ----------------------------------------------------------------------------


def test_a_market_order_takes_the_next_trades_at_their_prices() -> None:
    paper = PaperMatcher()
    paper.submit(order("a", "sell", "1"), T0)
    got = paper.feed([trade(1, "100", "0.25"), trade(2, "101", "0.5"), trade(3, "99", "2")])
    assert fills(got) == [
        ("a", 1, "100", "0.25", "taker"),
        ("a", 2, "101", "0.5", "taker"),
        ("a", 3, "99", "0.25", "taker"),
    ]


def test_one_trade_is_shared_in_priority_and_never_gives_more_than_its_size() -> None:
    paper = PaperMatcher()
    paper.submit(order("low", "buy", "1", "100"), T0)
    paper.submit(order("high", "buy", "1", "100.5"), T0 + 1)
    paper.submit(order("late", "buy", "1", "100.5"), T0 + 2)
    paper.submit(order("mkt", "sell", "0.3"), T0 + 3)
    # takers first, then the limit the trade went furthest through, then time
    got = fills(paper.on_tick(trade(1, "99", "1.5")))
    assert got == [
        ("mkt", 1, "99", "0.3", "taker"),
        ("high", 1, "100.5", "1", "maker"),
        ("late", 1, "100.5", "0.2", "maker"),
    ]
    assert fills(paper.on_tick(trade(2, "99", "1"))) == [
        ("late", 2, "100.5", "0.8", "maker"),
        ("low", 2, "100", "0.2", "maker"),
    ]


# -- stop-market ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "stop", "prices"),
    [("buy", "105", ["104", "105", "106"]), ("sell", "95", ["96", "95", "94"])],
)
def test_a_stop_triggers_on_a_trade_at_its_stop_then_takes_the_trades_after(
    side: str, stop: str, prices: list[str]
) -> None:
    paper = PaperMatcher()
    paper.submit(order("s", side, "1", stop_price=stop), T0)
    assert paper.on_tick(trade(1, prices[0], "5")) == []
    triggered = paper.on_tick(trade(2, prices[1], "5"))
    assert triggered == [
        OrderTriggered(account=ACCOUNT, order_id="s", ts=T0 + 2 * SECOND, trade_id=2)
    ]
    assert fills(paper.on_tick(trade(3, prices[2], "0.7"))) == [("s", 3, prices[2], "0.7", "taker")]


def test_stops_one_trade_triggers_take_the_trades_after_in_the_order_placed() -> None:
    paper = PaperMatcher()
    for name in ("a", "b", "c"):
        paper.submit(order(name, "sell", "1", stop_price="95"), T0)
    assert kinds(paper.on_tick(trade(1, "95", "5"))) == [("OrderTriggered", n) for n in "abc"]
    assert fills(paper.on_tick(trade(2, "95", "1.5"))) == [
        ("a", 2, "95", "1", "taker"),
        ("b", 2, "95", "0.5", "taker"),
    ]


def test_stops_handed_back_triggered_keep_their_places_when_their_trade_comes_again() -> None:
    """After a restart, a and c were stored as triggered by trade 1 and b was not: trade 1
    comes again and triggers b, which queues between them, as in the run above."""
    paper = PaperMatcher()
    after_trade_1 = T0 + SECOND + 1
    paper.submit(order("a", "sell", "1"), after_trade_1, triggered_by=1)
    paper.submit(order("b", "sell", "1", stop_price="95"), T0)
    paper.submit(order("c", "sell", "1"), after_trade_1, triggered_by=1)
    assert kinds(paper.on_tick(trade(1, "95", "5"))) == [("OrderTriggered", "b")]
    assert fills(paper.on_tick(trade(2, "95", "1.5"))) == [
        ("a", 2, "95", "1", "taker"),
        ("b", 2, "95", "0.5", "taker"),
    ]


def test_stops_handed_back_triggered_by_another_trade_stay_ahead() -> None:
    paper = PaperMatcher()
    paper.submit(order("a", "sell", "1"), T0 + 1, triggered_by=0)
    paper.submit(order("b", "sell", "1", stop_price="95"), T0)
    paper.submit(order("c", "sell", "1"), T0 + 1, triggered_by=0)
    assert kinds(paper.on_tick(trade(1, "95", "1.5"))) == [
        ("OrderFilled", "a"),
        ("OrderFilled", "c"),
        ("OrderTriggered", "b"),
    ]
    assert [fill[:4] for fill in fills(paper.on_tick(trade(2, "95", "5")))] == [
        ("c", 2, "95", "0.5"),
        ("b", 2, "95", "1"),
    ]


def test_a_triggered_stop_with_ioc_meets_one_trade_after_the_trigger() -> None:
    paper = PaperMatcher()
    paper.submit(order("s", "sell", "1", stop_price="95", tif=TimeInForce.IOC), T0)
    assert kinds(paper.on_tick(trade(1, "94", "5"))) == [("OrderTriggered", "s")]
    got = paper.on_tick(trade(2, "94", "0.4"))
    assert fills(got) == [("s", 2, "94", "0.4", "taker")]
    assert got[-1] == OrderCanceled(
        account=ACCOUNT, order_id="s", reason="ioc-remainder", ts=T0 + 2 * SECOND
    )


# -- immediate or cancel, fill or kill --------------------------------------------------------


def test_ioc_fills_what_the_next_trade_allows_and_cancels_the_rest() -> None:
    paper = PaperMatcher()
    paper.submit(order("i", "buy", "1", "100", tif=TimeInForce.IOC), T0)
    got = paper.on_tick(trade(1, "99.5", "0.4"))
    assert fills(got) == [("i", 1, "99.5", "0.4", "taker")]
    assert got[-1] == OrderCanceled(
        account=ACCOUNT, order_id="i", reason=venue.IOC_REMAINDER, ts=T0 + SECOND
    )
    assert paper.on_tick(trade(2, "99", "5")) == []


def test_an_ioc_limit_the_next_trade_is_worse_than_ends_unfilled() -> None:
    paper = PaperMatcher()
    paper.submit(order("i", "buy", "1", "100", tif=TimeInForce.IOC), T0)
    assert kinds(paper.on_tick(trade(1, "100.5", "5"))) == [("OrderCanceled", "i")]


def test_fok_fills_entirely_from_one_trade() -> None:
    paper = PaperMatcher()
    paper.submit(order("f", "sell", "1", tif=TimeInForce.FOK), T0)
    assert fills(paper.on_tick(trade(1, "100", "1"))) == [("f", 1, "100", "1", "taker")]


def test_fok_is_canceled_when_what_is_left_of_the_next_trade_cannot_fill_it() -> None:
    paper = PaperMatcher()
    paper.submit(order("m", "sell", "0.5"), T0)
    paper.submit(order("f", "sell", "1", "99", tif=TimeInForce.FOK), T0 + 1)
    got = paper.on_tick(trade(1, "100", "1.2"))  # 0.7 left after the earlier market order
    assert fills(got) == [("m", 1, "100", "0.5", "taker")]
    assert got[-1] == OrderCanceled(
        account=ACCOUNT, order_id="f", reason=venue.FOK_UNFILLED, ts=T0 + SECOND
    )


# -- latency ----------------------------------------------------------------------------------


def test_an_order_is_live_only_from_submit_time_plus_latency() -> None:
    paper = matcher(latency_ns=2 * SECOND)
    paper.submit(order("a", "sell", "1"), T0 + 10 * SECOND)
    assert paper.on_tick(trade(1, "100", "1", at=11)) == []  # 1 s after submit: not yet
    assert fills(paper.on_tick(trade(2, "101", "1", at=12))) == [("a", 2, "101", "1", "taker")]


def test_the_queue_of_a_delayed_order_counts_trades_up_to_when_it_went_live() -> None:
    paper = matcher(latency_ns=2 * SECOND)
    paper.submit(order("a", "buy", "1", "100"), T0 + 10 * SECOND)
    paper.on_tick(trade(1, "100", "0.5", at=11))  # before it is live: it joins behind this
    assert fills(paper.on_tick(trade(2, "100", "0.7", at=12))) == [("a", 2, "100", "0.2", "maker")]


# -- fees -------------------------------------------------------------------------------------


def test_fees_are_basis_points_of_the_notional_in_the_quote_currency_rounded_up() -> None:
    paper = matcher(maker_fee_bps=D("1"), taker_fee_bps=D("7.5"), fee_places=2)
    paper.submit(order("t", "buy", "0.3"), T0)
    paper.submit(order("m", "buy", "0.5", "100"), T0)
    got = [r for r in paper.on_tick(trade(1, "99.9", "1")) if isinstance(r, OrderFilled)]
    # taker: 99.9 * 0.3 * 7.5 / 10000 = 0.02247750 -> 0.03 (up)
    # maker: 100 * 0.5 * 1 / 10000 = 0.005 -> 0.01 (up)
    assert [(f.order_id, f.fee, f.fee_currency) for f in got] == [
        ("t", D("0.03"), "USDT"),
        ("m", D("0.01"), "USDT"),
    ]


def test_a_fee_that_fits_the_places_is_exact() -> None:
    paper = matcher(taker_fee_bps=D("10"))
    paper.submit(order("t", "buy", "0.0002"), T0)
    (filled,) = paper.on_tick(trade(1, "105433.6", "1"))
    assert isinstance(filled, OrderFilled)
    assert filled.fee == D("0.02108672")  # 105433.6 * 0.0002 * 10 / 10000


# -- cancel and amend -------------------------------------------------------------------------


def test_cancel_ends_a_working_order_and_refuses_what_is_not_one() -> None:
    paper = PaperMatcher()
    paper.submit(order("a", price="100"), T0)
    assert paper.cancel(ACCOUNT + 1, "a", T0 + 1) == [
        CancelRefused(
            account=ACCOUNT + 1,
            order_id="a",
            code="unknown-order",
            message="no working order 'a' for this account",
            ts=T0 + 1,
        )
    ]
    assert paper.cancel(ACCOUNT, "a", T0 + 2) == [
        OrderCanceled(account=ACCOUNT, order_id="a", reason="requested", ts=T0 + 2)
    ]
    assert paper.on_tick(trade(1, "99", "5")) == []
    (again,) = paper.cancel(ACCOUNT, "a", T0 + 3)
    assert isinstance(again, CancelRefused)
    assert again.code == venue.UNKNOWN_ORDER


def test_amending_the_price_loses_time_priority() -> None:
    paper = PaperMatcher()
    paper.submit(order("first", "buy", "1", "99"), T0)
    paper.submit(order("second", "buy", "1", "100"), T0 + 1)
    (updated,) = paper.amend(ACCOUNT, "first", T0 + 2, price=D("100"))
    assert updated == OrderUpdated(
        account=ACCOUNT,
        order_id="first",
        quantity=D("1"),
        price=D("100"),
        stop_price=None,
        ts=T0 + 2,
    )
    assert [f[0] for f in fills(paper.on_tick(trade(1, "99", "1.5")))] == ["second", "first"]


def test_raising_the_quantity_loses_time_priority() -> None:
    paper = PaperMatcher()
    paper.submit(order("first", "buy", "1", "100"), T0)
    paper.submit(order("second", "buy", "1", "100"), T0 + 1)
    paper.amend(ACCOUNT, "first", T0 + 2, quantity=D("2"))
    assert fills(paper.on_tick(trade(1, "99", "1.5"))) == [
        ("second", 1, "100", "1", "maker"),
        ("first", 1, "100", "0.5", "maker"),
    ]


def test_lowering_the_quantity_keeps_time_priority_and_the_queue() -> None:
    paper = PaperMatcher()
    paper.on_tick(trade(1, "100", "0.5"))
    paper.submit(order("first", "buy", "1", "100"), T0 + 2 * SECOND)
    paper.submit(order("second", "buy", "1", "100"), T0 + 3 * SECOND)
    paper.on_tick(trade(4, "100", "0.4"))  # 0.1 left ahead of both
    paper.amend(ACCOUNT, "first", T0 + 5 * SECOND, quantity=D("0.5"))
    assert fills(paper.on_tick(trade(6, "100", "0.8"))) == [
        ("first", 6, "100", "0.5", "maker"),
        ("second", 6, "100", "0.2", "maker"),
    ]


def test_a_new_price_gets_a_new_queue_estimate() -> None:
    paper = PaperMatcher()
    paper.feed([trade(1, "101", "0.6"), trade(2, "100", "9")])
    paper.submit(order("a", "buy", "1", "100"), T0 + 3 * SECOND)
    paper.on_tick(trade(4, "100", "9"))  # the queue of 9 at 100 is worked off
    paper.amend(ACCOUNT, "a", T0 + 5 * SECOND, price=D("101"))  # 0.6 traded at 101 in the look-back
    assert fills(paper.on_tick(trade(6, "101", "1"))) == [("a", 6, "101", "0.4", "maker")]


def test_a_stop_price_can_be_moved_until_the_stop_triggers() -> None:
    paper = PaperMatcher()
    paper.submit(order("s", "buy", "1", stop_price="105"), T0)
    assert isinstance(paper.amend(ACCOUNT, "s", T0 + 1, stop_price=D("110"))[0], OrderUpdated)
    assert paper.on_tick(trade(1, "106", "1")) == []
    assert kinds(paper.on_tick(trade(2, "110", "1"))) == [("OrderTriggered", "s")]
    (refused,) = paper.amend(ACCOUNT, "s", T0 + 3 * SECOND, stop_price=D("120"))
    assert isinstance(refused, AmendRefused)
    assert (refused.code, refused.field) == ("invalid-amend", None)


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({}, "invalid-amend", None),
        ({"quantity": D("0")}, "invalid-amend", "quantity"),
        ({"quantity": D("0.4")}, "quantity-not-above-filled", "quantity"),
        ({"price": D("-1")}, "invalid-amend", "price"),
        ({"stop_price": D("90")}, "invalid-amend", "stop_price"),
    ],
)
def test_an_amend_that_cannot_be_done_is_refused_with_our_code(
    changes: dict[str, Decimal], code: str, field: str | None
) -> None:
    paper = PaperMatcher()
    paper.submit(order("a", "buy", "1", "100"), T0)
    paper.on_tick(trade(1, "99", "0.4"))
    (refused,) = paper.amend(ACCOUNT, "a", T0 + 2 * SECOND, **changes)
    assert isinstance(refused, AmendRefused)
    assert (refused.code, refused.field, refused.order_id) == (code, field, "a")


def test_a_market_order_or_a_triggered_stop_cannot_be_amended_nor_an_unknown_order() -> None:
    paper = PaperMatcher()
    paper.submit(order("m", "buy", "1"), T0)
    paper.submit(order("s", "buy", "1", stop_price="100"), T0)
    paper.on_tick(trade(1, "100", "0.5"))  # fills part of m, triggers s
    refused = [
        *paper.amend(ACCOUNT, "m", T0 + 2 * SECOND, quantity=D("2")),
        *paper.amend(ACCOUNT, "s", T0 + 2 * SECOND, quantity=D("2")),
        *paper.amend(ACCOUNT, "nope", T0 + 2 * SECOND, quantity=D("1")),
    ]
    assert all(isinstance(r, AmendRefused) for r in refused)
    assert [
        (r.order_id, r.code, r.field, r.message) for r in refused if isinstance(r, AmendRefused)
    ] == [
        ("m", "invalid-amend", None, "a market order or a triggered stop cannot be amended"),
        ("s", "invalid-amend", None, "a market order or a triggered stop cannot be amended"),
        ("nope", "unknown-order", None, "no working order 'nope' for this account"),
    ]


# -- what the venue rejects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submitted", "message"),
    [
        (order("x", quantity="0", price="100"), "the quantity must be positive, got 0"),
        (order("x", quantity="1E+31"), "the quantity must be below 10**30, got 1E+31"),
        (order("x", type=OrderType.LIMIT), "a limit order needs a price"),
        (order("x", price="-1"), "the price must be positive, got -1"),
        (order("x", price="100", type=OrderType.MARKET), "a market order has no price"),
        (order("x", type=OrderType.STOP_MARKET), "a stop-market order needs a stop_price"),
        (
            order("x", stop_price="1E-37"),
            "the stop_price must have at most 36 decimal places, got 1E-37",
        ),
        (order("x", price="100", stop_price="90"), "a limit order has no stop_price"),
    ],
)
def test_an_order_whose_prices_do_not_fit_its_type_is_rejected(
    submitted: OrderSubmitted, message: str
) -> None:
    assert PaperMatcher().submit(submitted, T0) == [
        OrderRejected(
            account=ACCOUNT, order_id="x", reason_code="invalid-order", message=message, ts=T0
        )
    ]


def test_a_duplicate_working_order_id_and_one_order_too_many_are_rejected() -> None:
    paper = matcher(max_open_orders=2)
    paper.submit(order("a", price="100"), T0)
    (duplicate,) = paper.submit(order("a", price="100"), T0)
    paper.submit(order("b", price="100"), T0)
    (too_many,) = paper.submit(order("c", price="100"), T0)
    assert isinstance(duplicate, OrderRejected)
    assert isinstance(too_many, OrderRejected)
    assert (duplicate.reason_code, too_many.reason_code) == ("duplicate-order", "too-many-orders")
    paper.cancel(ACCOUNT, "b", T0)
    assert isinstance(paper.submit(order("c", price="100"), T0)[0], OrderAccepted)


# -- instruments ------------------------------------------------------------------------------


def test_each_instruments_trades_fill_only_its_own_orders() -> None:
    paper = PaperMatcher()
    paper.submit(order("x", "buy", "1"), T0)
    paper.submit(order("e", "buy", "1", instrument="KRAKEN:ETHUSD"), T0)
    got = paper.on_tick(trade(1, "3000", "2", instrument="KRAKEN:ETHUSD"))
    assert [
        (f.order_id, f.instrument, f.fee_currency) for f in got if isinstance(f, OrderFilled)
    ] == [("e", "KRAKEN:ETHUSD", "USD")]


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"latency_ns": -1}, "latency_ns must be non-negative, got -1"),
        ({"maker_fee_bps": D("-1")}, "maker_fee_bps must be within 0..1000, got -1"),
        ({"taker_fee_bps": D("2000")}, "taker_fee_bps must be within 0..1000, got 2000"),
        ({"fee_places": 19}, "fee_places must be within 0..18, got 19"),
        ({"max_open_orders": 0}, "max_open_orders must be at least 1, got 0"),
    ],
)
def test_settings_refuse_what_makes_no_sense(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        PaperSettings(**settings)  # type: ignore[arg-type]


def test_the_queue_model_refuses_what_makes_no_sense() -> None:
    with pytest.raises(ValueError, match=r"^fraction must be a non-negative number, got -0\.5$"):
        QueueModel(fraction=D("-0.5"))
    with pytest.raises(ValueError, match=r"^lookback_ns must be non-negative, got -1$"):
        QueueModel(lookback_ns=-1)


def test_a_later_order_at_the_same_price_never_has_less_ahead_than_an_earlier_one() -> None:
    paper = matcher(queue=QueueModel(lookback_ns=10 * SECOND))
    paper.on_tick(trade(1, "100", "2", at=1))
    paper.submit(order("first", "buy", "1", "100"), T0 + 2 * SECOND)  # 2 ahead
    paper.on_tick(trade(2, "101", "1", at=5))
    paper.submit(order("second", "buy", "1", "100"), T0 + 20 * SECOND)  # the look-back is empty
    assert paper.on_tick(trade(3, "100", "1.5", at=21)) == []  # both still behind the 2
    assert fills(paper.on_tick(trade(4, "100", "1", at=22))) == [
        ("first", 4, "100", "0.5", "maker")
    ]


def test_an_instrument_without_known_currencies_is_rejected_with_the_domains_code() -> None:
    (rejected,) = PaperMatcher().submit(order("x", price="1", instrument="KRAKEN:ABCDEF"), T0)
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason_code == "unknown-instrument"


def test_stops_one_trade_triggers_become_takers_in_the_order_they_were_placed() -> None:
    paper = PaperMatcher()
    paper.submit(order("far", "sell", "1", stop_price="99"), T0)
    paper.submit(order("near", "sell", "1", stop_price="100"), T0 + 1)
    paper.submit(order("buy", "buy", "1", stop_price="98"), T0 + 2)  # 98.5 is above it
    assert kinds(paper.on_tick(trade(1, "98.5", "5"))) == [
        ("OrderTriggered", "far"),
        ("OrderTriggered", "near"),
        ("OrderTriggered", "buy"),
    ]
    assert fills(paper.on_tick(trade(2, "98", "1.5"))) == [
        ("far", 2, "98", "1", "taker"),
        ("near", 2, "98", "0.5", "taker"),
    ]


def test_an_order_canceled_before_it_goes_live_never_fills_and_its_id_can_come_back() -> None:
    paper = matcher(latency_ns=5 * SECOND)
    paper.submit(order("a", "buy", "1"), T0)
    paper.cancel(ACCOUNT, "a", T0 + SECOND)
    paper.submit(order("a", "sell", "0.5"), T0 + 2 * SECOND)  # live from 7 s
    assert paper.on_tick(trade(6, "100", "9")) == []
    assert fills(paper.on_tick(trade(7, "100", "9"))) == [("a", 7, "100", "0.5", "taker")]


def test_an_order_amended_before_it_goes_live_works_as_amended() -> None:
    paper = matcher(latency_ns=5 * SECOND)
    paper.submit(order("a", "buy", "1", "100"), T0)
    paper.amend(ACCOUNT, "a", T0 + SECOND, price=D("101"), quantity=D("2"))
    assert paper.on_tick(trade(4, "99", "9")) == []  # not live yet
    assert fills(paper.on_tick(trade(5, "100.5", "9"))) == [("a", 5, "101", "2", "maker")]


def test_orders_canceled_before_going_live_do_not_pile_up_without_trades() -> None:
    paper = matcher(latency_ns=SECOND)
    for n in range(1_000):
        paper.submit(order(f"o{n}", price="100"), T0 + n)
        paper.cancel(ACCOUNT, f"o{n}", T0 + n)
    paper.submit(order("kept", "buy", "1", "100"), T0 + 2_000)
    book = paper._books[INSTRUMENT]
    assert len(book._pending) <= 2 * len(book) + 64
    assert fills(paper.on_tick(trade(5, "99", "1"))) == [("kept", 5, "100", "1", "maker")]


def test_the_look_back_keeps_at_most_max_trades() -> None:
    paper = matcher(queue=QueueModel(max_trades=2))
    paper.feed([trade(1, "100", "5"), trade(2, "100", "0.3"), trade(3, "100", "0.2")])
    paper.submit(order("a", "buy", "1", "100"), T0 + 4 * SECOND)  # only 0.5 remembered ahead
    assert fills(paper.on_tick(trade(5, "100", "0.6"))) == [("a", 5, "100", "0.1", "maker")]

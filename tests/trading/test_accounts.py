"""A spot account: deposits, reservations drawn by fills and released, positions with their
average price and realised P&L, fees, and our codes for what it cannot take."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from core import trading_events as te
from core.positions import Position, unrealised
from tests.trading.factories import request
from trading.domain.accounts import (
    MAX_RECENT_ORDERS,
    Account,
    AccountError,
    Reservation,
    fold_account,
    reservation_for,
)
from trading.domain.exact import EXACT
from trading.domain.instruments import UnknownInstrumentError, spec_of
from trading.domain.orders import OrderRequest

D = Decimal
T = te.OrderType
BUY, SELL = te.OrderSide.BUY, te.OrderSide.SELL
XBT = "KRAKEN:XBTUSDT"


def deposit(currency: str, amount: str) -> te.FundsDeposited:
    return te.FundsDeposited(account=7, currency=currency, amount=D(amount), ts=1)


def reserve(order_id: str, currency: str, amount: str) -> te.FundsReserved:
    return te.FundsReserved(account=7, order_id=order_id, currency=currency, amount=D(amount), ts=2)


def release(order_id: str, currency: str, amount: str, ts: int = 9) -> te.FundsReleased:
    return te.FundsReleased(
        account=7, order_id=order_id, currency=currency, amount=D(amount), ts=ts
    )


def fill(order_id: str, side: te.OrderSide, quantity: str, price: str, fee: str) -> te.OrderFilled:
    return te.OrderFilled(
        account=7, order_id=order_id, fill_id=f"{order_id}-{quantity}", instrument=XBT, side=side,
        price=D(price), quantity=D(quantity), fee=D(fee), fee_currency="USDT",
        liquidity=te.Liquidity.TAKER, trade_id=1, ts=4,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("instrument", "base", "quote"),
    [
        ("KRAKEN:XBTUSDT", "XBT", "USDT"),
        ("SYNTH:BTCUSD", "BTC", "USD"),
        ("BINANCE:ETHBTC", "ETH", "BTC"),
        ("COINBASE:BTC-USD", "BTC", "USD"),
        ("KRAKEN:XBT/EUR", "XBT", "EUR"),
    ],
)
def test_an_instrument_splits_into_its_base_and_quote(
    instrument: str, base: str, quote: str
) -> None:
    assert (spec_of(instrument).base, spec_of(instrument).quote) == (base, quote)


@pytest.mark.parametrize("instrument", ["SYNTH:USD", "SYNTH:ABCDEF", "X:A-B-C", "btcusd"])
def test_an_instrument_that_does_not_split_is_refused_with_our_code(instrument: str) -> None:
    with pytest.raises(UnknownInstrumentError) as refused:
        spec_of(instrument)
    assert refused.value.code == "unknown-instrument"


def test_a_buy_draws_on_its_reservation_and_the_rest_is_released() -> None:
    account = fold_account(7, [deposit("USDT", "1000"), reserve("o", "USDT", "200.2")])
    assert (account.available("USDT"), account.reserved["USDT"]) == (D("799.8"), D("200.2"))
    account = account.apply(fill("o", BUY, "1.5", "99", "0.1485"))
    assert account.reservations["o"] == Reservation("USDT", D("200.2") - D("148.6485"))
    assert account.balance("USDT") == D("1000") - D("148.5") - D("0.1485")
    assert (account.balance("XBT"), account.fees["USDT"]) == (D("1.5"), D("0.1485"))
    done = account.release("o", ts=9)
    assert done == release("o", "USDT", "51.5515")
    assert done is not None
    account = account.apply(done)
    assert (account.reservations, account.reserved) == ({}, {})
    assert account.available("USDT") == account.balance("USDT") == D("851.3515")
    assert account.release("o", ts=10) is None


def test_a_sell_delivers_base_and_receives_quote_less_the_fee() -> None:
    account = fold_account(7, [deposit("XBT", "2"), reserve("s", "XBT", "2")])
    account = account.apply(fill("s", SELL, "2", "100", "0.2"))
    assert (account.balance("XBT"), account.balance("USDT")) == (D(0), D("199.8"))
    assert account.reservations == {}
    assert account.position(XBT) == Position(instrument=XBT, quantity=D(-2), average_price=D(100))


TEN_USDT = deposit("USDT", "10")
HELD = reserve("o", "USDT", "5")


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([TEN_USDT, reserve("o", "USDT", "10.01")], "overdrawn"),
        ([TEN_USDT, HELD, reserve("p", "USDT", "5.5")], "overdrawn"),
        ([fill("o", SELL, "1", "100", "0")], "overdrawn"),
        ([deposit("USDT", "100"), fill("o", BUY, "1", "100", "0.1")], "overdrawn"),
        ([TEN_USDT, HELD, fill("b", BUY, "0.05", "100", "0.1")], "overdrawn"),
        ([TEN_USDT, HELD, release("o", "USDT", "6")], "no-reservation"),
        ([TEN_USDT, HELD, release("o", "XBT", "1")], "no-reservation"),
        ([release("o", "USDT", "1")], "no-reservation"),
        ([TEN_USDT, deposit("XBT", "1"), HELD, reserve("o", "XBT", "1")], "no-reservation"),
        ([te.KillSwitchSet(account=8, on=True, ts=1)], "another-account"),
    ],
)
def test_what_the_account_cannot_take_is_refused_with_our_code(
    events: list[te.TradingEvent], code: str
) -> None:
    with pytest.raises(AccountError) as refused:
        fold_account(7, events)
    assert refused.value.code == code


def test_a_position_averages_in_and_realises_out_and_turns_over() -> None:
    position = Position(instrument=XBT)
    position = position.traded(BUY, D(2), D(100)).traded(BUY, D(1), D(130))
    assert (position.quantity, position.average_price) == (D(3), D(110))
    position = position.traded(SELL, D("1.5"), D(120))
    assert (position.quantity, position.average_price, position.realised) == (
        D("1.5"),
        D(110),
        D(15),
    )
    assert unrealised(position, D(90)) == D(-30)
    position = position.traded(SELL, D("2.5"), D(100))
    assert (position.quantity, position.average_price, position.realised) == (D(-1), D(100), D(0))
    assert unrealised(position, D(90)) == D(10)
    position = position.traded(BUY, D(1), D(95))
    assert (position.quantity, position.average_price, position.realised) == (D(0), D(0), D(5))


def test_an_average_price_is_rounded_to_34_digits() -> None:
    position = Position(instrument=XBT).traded(BUY, D(1), D(1)).traded(BUY, D(2), D(2))
    assert position.average_price == D("1.666666666666666666666666666666667")


@pytest.mark.parametrize(
    ("made", "last", "currency", "amount"),
    [
        (request(T.LIMIT), None, "USDT", "200.2"),
        (request(T.MARKET), D(100), "USDT", "210.21"),
        (request(T.STOP_MARKET), D(100), "USDT", "231.231"),
        (request(T.LIMIT, side=SELL), D(100), "XBT", "2"),
        (request(T.MARKET, side=SELL), None, "XBT", "2"),
        (request(T.LIMIT, price=D("1.000000000000000001"), quantity=D("1.5")), None, "USDT",
         "1.501500000000000002"),
    ],
)  # fmt: skip
def test_a_reservation_covers_the_worst_price_and_the_taker_fee(
    made: OrderRequest, last: Decimal | None, currency: str, amount: str
) -> None:
    assert reservation_for(made, last, D(5), D("0.001")) == Reservation(currency, D(amount))


def test_a_market_buy_without_a_last_price_has_no_reservation() -> None:
    with pytest.raises(ValueError, match="needs a last price"):
        reservation_for(request(T.MARKET), None, D(5), D("0.001"))


def test_an_amend_adjusts_the_reservation_both_ways() -> None:
    account = fold_account(7, [deposit("USDT", "100"), reserve("o", "USDT", "10")])
    up = account.adjust("o", Reservation("USDT", D(12)), ts=5)
    down = account.adjust("o", Reservation("USDT", D(4)), ts=5)
    assert isinstance(up, te.FundsReserved)
    assert isinstance(down, te.FundsReleased)
    assert (up.amount, down.amount) == (D(2), D(6))
    assert account.apply(up).reservations["o"].amount == D(12)
    assert account.apply(down).reservations["o"].amount == D(4)
    assert account.adjust("o", Reservation("USDT", D(10)), ts=5) is None
    with pytest.raises(AccountError) as refused:
        account.adjust("o", Reservation("XBT", D(1)), ts=5)
    assert refused.value.code == "no-reservation"


def test_the_kill_switch_and_the_recent_orders_are_kept() -> None:
    opened = [request().submitted(f"o-{n}", ts=n) for n in range(MAX_RECENT_ORDERS + 5)]
    account = fold_account(7, [*opened, te.KillSwitchSet(account=7, on=True, ts=9)])
    assert account.kill_switch
    assert account.recent_orders == tuple(range(5, MAX_RECENT_ORDERS + 5))
    assert Account(account=7).apply(te.OrderExpired(account=7, order_id="o", ts=1)) == Account(
        account=7
    )


def test_amounts_stay_exact_past_the_default_28_digits() -> None:
    big = fill("p", BUY, "12345678901234.123456789012345678", "1234567.123456789012345678", "0")
    account = fold_account(7, [deposit("USDT", "1E+29"), fill("o", BUY, "1", "1", "0"), big])
    with localcontext(EXACT):
        notional = big.quantity * big.price
        assert len(notional.as_tuple().digits) > 28
        assert account.balance("USDT") == D("1E+29") - 1 - notional
        assert account.balance("XBT") == big.quantity + 1

"""Pre-trade risk refuses with our code and names the field: buying power, notional,
position, price band, order rate, kill switch, and a market order with no price yet."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core import trading_events as te
from tests.trading.factories import request
from trading.domain.accounts import Account, fold_account, reservation_for
from trading.domain.orders import OrderRequest, cancel, fold
from trading.domain.risk import SECOND_NS, RiskLimits, RiskRefused, check, kill

D = Decimal
T = te.OrderType
SELL = te.OrderSide.SELL
LIMITS = RiskLimits(
    max_order_notional=D(10_000),
    max_position=D(50),
    price_band_pct=D(5),
    orders_per_second=3,
    taker_fee=D("0.001"),
)
NOW = 10 * SECOND_NS


def funded(usdt: str = "1000", xbt: str = "3", *more: te.TradingEvent) -> Account:
    deposits = [
        te.FundsDeposited(account=7, currency="USDT", amount=D(usdt), ts=1),
        te.FundsDeposited(account=7, currency="XBT", amount=D(xbt), ts=1),
    ]
    return fold_account(7, [*deposits, *more])


def submitted_at(*times: int) -> list[te.TradingEvent]:
    return [request().submitted(f"o-{n}", ts=ts) for n, ts in enumerate(times)]


@pytest.mark.parametrize(
    ("made", "account", "last", "code", "field"),
    [
        (request(), funded("200.19"), D(100), "buying-power", "quantity"),
        (request(T.MARKET), funded("210.2"), D(100), "buying-power", "quantity"),
        (request(side=SELL, quantity=D("3.01")), funded(), D(100), "buying-power", "quantity"),
        (request(quantity=D(101)), funded("1E+6"), D(100), "max-notional", "quantity"),
        (request(T.MARKET, quantity=D(101)), funded("1E+6"), D(100), "max-notional", "quantity"),
        (request(quantity=D("50.1"), price=D(99)), funded("1E+6"), D(100), "max-position",
         "quantity"),
        (request(side=SELL, quantity=D(54)), funded("0", "60"), D(100), "max-position",
         "quantity"),
        (request(price=D("105.01")), funded(), D(100), "price-band", "price"),
        (request(price=D("94.99")), funded(), D(100), "price-band", "price"),
        (request(T.STOP_MARKET, stop_price=D("105.5")), funded(), D(100), "price-band",
         "stop_price"),
        (request(T.MARKET), funded(), None, "no-price", "type"),
        (request(), funded("1000", "3", te.KillSwitchSet(account=7, on=True, ts=2)), D(100),
         "kill-switch", None),
        (request(), funded("1000", "3", *submitted_at(NOW - SECOND_NS + 1, NOW - 5, NOW)),
         D(100), "order-rate", None),
        (request(price=D(200)), funded("0", "0", te.KillSwitchSet(account=7, on=True, ts=2)),
         D(100), "kill-switch", None),
    ],
)  # fmt: skip
def test_risk_refuses_with_our_code_naming_the_field(
    made: OrderRequest, account: Account, last: Decimal | None, code: str, field: str | None
) -> None:
    with pytest.raises(RiskRefused) as refused:
        check(made, account, last, NOW, LIMITS)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert str(refused.value).startswith(f"{code}: ")


@pytest.mark.parametrize(
    ("made", "account", "last"),
    [
        (request(), funded("200.2"), D(100)),
        (request(), funded("200.2"), None),
        (request(T.MARKET), funded("210.21"), D(100)),
        (request(price=D(105)), funded(), D(100)),
        (request(price=D(95)), funded(), D(100)),
        (request(side=SELL, quantity=D(3)), funded(), D(100)),
        (request(T.STOP_MARKET), funded(), None),
        (request(), funded("1000", "3", *submitted_at(NOW - SECOND_NS, NOW - 5, NOW)), D(100)),
        (request(), funded("1000", "3", te.KillSwitchSet(account=7, on=False, ts=2)), D(100)),
    ],
)  # fmt: skip
def test_an_order_within_every_limit_passes(
    made: OrderRequest, account: Account, last: Decimal | None
) -> None:
    check(made, account, last, NOW, LIMITS)


def test_the_default_limits_hold_when_none_are_given() -> None:
    with pytest.raises(RiskRefused) as refused:
        check(request(quantity=D(1001)), funded("1E+6"), D(100), NOW)
    assert (refused.value.code, refused.value.field) == ("max-position", "quantity")
    check(request(quantity=D(1000)), funded("1E+6"), D(100), NOW)


def test_the_deployments_kill_switch_blocks_every_account() -> None:
    stopped = RiskLimits(kill_switch=True)
    with pytest.raises(RiskRefused) as refused:
        check(request(), funded(), D(100), NOW, stopped)
    assert refused.value.code == "kill-switch"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"orders_per_second": 0}, "orders_per_second must be within 1..1000"),
        ({"orders_per_second": 1001}, "orders_per_second must be within 1..1000"),
        ({"max_position": D(0)}, "max_position must be positive"),
        ({"taker_fee": D(1)}, "taker_fee must be within"),
    ],
)
def test_limits_are_checked_when_made(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RiskLimits(**changes)  # type: ignore[arg-type]


def test_the_kill_switch_cancels_every_open_order_releases_it_and_blocks() -> None:
    events: list[te.TradingEvent] = [
        te.FundsDeposited(account=7, currency="USDT", amount=D(1000), ts=0)
    ]
    events.append(te.FundsDeposited(account=7, currency="XBT", amount=D(3), ts=0))
    orders = []
    for n, made in enumerate([request(), request(price=D(99)), request(side=SELL)]):
        opened = made.submitted(f"o-{n}", ts=n)
        needed = reservation_for(made, D(100), LIMITS.price_band_pct, LIMITS.taker_fee)
        events.append(opened)
        events.append(
            te.FundsReserved(
                account=7, order_id=opened.order_id, currency=needed.currency,
                amount=needed.amount, ts=n,
            )
        )  # fmt: skip
        accepted = te.OrderAccepted(account=7, order_id=opened.order_id, venue_order_id="v", ts=n)
        orders.append(fold([opened, accepted]))
    ended = orders[1].apply(cancel(orders[1], ts=5))
    released = fold_account(7, events).release("o-1", ts=5)
    assert released is not None
    events.append(released)
    stopped = kill(fold_account(7, events), [orders[0], ended, orders[2]], ts=9)
    assert [te.kind_of(event) for event in stopped] == [
        "kill-switch-set", "order-canceled", "funds-released", "order-canceled", "funds-released",
    ]  # fmt: skip
    after = fold_account(7, [*events, *stopped])
    assert (after.kill_switch, after.reservations) == (True, {})
    assert (after.available("USDT"), after.available("XBT")) == (D(1000), D(3))
    with pytest.raises(RiskRefused) as refused:
        check(request(), after, D(100), NOW, LIMITS)
    assert refused.value.code == "kill-switch"

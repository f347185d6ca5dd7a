"""The pure projection on its own: one event and the rows it reads in, the row changes out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core import trading_events as te
from core.positions import Position
from tests.trading.factories import event, request
from trading.domain.accounts import AccountError, Reservation
from trading.domain.orders import IllegalTransition, Order
from trading.readmodels.projection import (
    Balance,
    BalanceRow,
    FillRow,
    Needs,
    OrderRow,
    PositionRow,
    ReservationRow,
    account_slice,
    changes,
    needs,
)

D = Decimal


def accepted() -> Order:
    order = Order.submitted(request().submitted("o-1", ts=1))  # buy 2 KRAKEN:XBTUSDT at 100
    return order.apply(event("order-accepted", order))


def funded() -> list[Balance]:
    return [Balance(currency="USDT", cash=D(1000), reserved=D("200.2"))]


def test_a_fill_draws_on_its_reservation_and_moves_cash_position_and_fees() -> None:
    order = accepted()
    fill = event("order-filled", order, "part")  # 1 at 100, fee 0.01 USDT
    assert isinstance(fill, te.OrderFilled)
    assert needs(fill) == Needs(
        order_id="o-1",
        reservation="o-1",
        currencies=frozenset({"XBT", "USDT"}),
        instrument="KRAKEN:XBTUSDT",
    )
    held = {"o-1": Reservation("USDT", D("200.2"))}
    rows = changes(fill, order, account_slice(7, funded(), held, []))
    assert rows == [
        OrderRow(order.apply(fill)),
        FillRow(fill),
        BalanceRow(
            7, Balance(currency="USDT", cash=D("899.99"), reserved=D("100.19"), fees=D("0.01"))
        ),
        BalanceRow(7, Balance(currency="XBT", cash=D(1))),
        ReservationRow(7, "o-1", Reservation("USDT", D("100.19"))),
        PositionRow(7, Position(instrument="KRAKEN:XBTUSDT", quantity=D(1), average_price=D(100))),
    ]  # fmt: skip
    assert isinstance(rows[0], OrderRow)
    assert rows[0].order.status is te.OrderStatus.PARTIALLY_FILLED


def test_a_release_that_empties_a_reservation_removes_its_row() -> None:
    release = te.FundsReleased(account=7, order_id="o-1", currency="USDT", amount=D("200.2"), ts=5)
    held = {"o-1": Reservation("USDT", D("200.2"))}
    assert changes(release, None, account_slice(7, funded(), held, [])) == [
        BalanceRow(7, Balance(currency="USDT", cash=D(1000))),
        ReservationRow(7, "o-1", None),
    ]


def test_an_event_that_changes_no_balance_changes_only_its_order() -> None:
    order = Order.submitted(request().submitted("o-1", ts=1))
    accept = event("order-accepted", order)
    assert needs(accept) == Needs(order_id="o-1")
    assert changes(accept, order, account_slice(7, [], {}, [])) == [OrderRow(order.apply(accept))]


def test_what_the_domain_refuses_the_projection_refuses() -> None:
    order = accepted()
    fill = event("order-filled", order, "part")
    with pytest.raises(IllegalTransition):  # an order never submitted
        changes(fill, None, account_slice(7, funded(), {}, []))
    filled = order.apply(fill)
    with pytest.raises(IllegalTransition):  # the same fill twice
        changes(fill, filled, account_slice(7, funded(), {}, []))
    with pytest.raises(AccountError) as refused:  # more than the account holds
        changes(fill, order, account_slice(7, [Balance(currency="USDT", cash=D(50))], {}, []))
    assert refused.value.code == "overdrawn"

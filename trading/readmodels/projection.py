"""The pure projection: one event and the rows it touches in, the row changes out.

The rows are read back as the domain's own types (an :class:`~trading.domain.orders.Order`,
a slice of an :class:`~trading.domain.accounts.Account` holding only the currencies, the
reservation and the position the event concerns), the event is applied by the domain's own
``apply``, and what changed is handed back as rows. So the read models are the domain's fold
by construction: the same average price, realised P&L, reservations and fees, and the same
refusals (an event the domain refuses stops the projection rather than being fixed silently).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final, TypeAlias

import msgspec

from core.positions import Position
from core.trading_events import (
    ORDER_EVENTS,
    FundsDeposited,
    FundsReleased,
    FundsReserved,
    OrderFilled,
    OrderSubmitted,
    TradingEvent,
    kind_of,
)
from trading.domain.accounts import Account, Reservation
from trading.domain.instruments import spec_of
from trading.domain.orders import IllegalTransition, Order

_ZERO: Final = Decimal(0)


class Needs(msgspec.Struct, frozen=True, kw_only=True):
    """The rows an event reads (all of its own account)."""

    order_id: str | None = None
    """The order's row (with its fill ids for a fill)."""
    reservation: str | None = None
    """The order id whose reservation it draws on or changes (and that currency's balance)."""
    currencies: frozenset[str] = frozenset()
    """The balances it moves."""
    instrument: str | None = None
    """The position it moves."""


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """One currency of an account: ``available`` is ``cash - reserved``."""

    currency: str
    cash: Decimal = _ZERO
    reserved: Decimal = _ZERO
    fees: Decimal = _ZERO
    """Paid in this currency."""


class OrderRow(msgspec.Struct, frozen=True):
    order: Order


class FillRow(msgspec.Struct, frozen=True):
    fill: OrderFilled


class PositionRow(msgspec.Struct, frozen=True):
    account: int
    position: Position


class BalanceRow(msgspec.Struct, frozen=True):
    account: int
    balance: Balance


class ReservationRow(msgspec.Struct, frozen=True):
    account: int
    order_id: str
    reservation: Reservation | None
    """``None``: the order holds nothing any more (the row goes)."""


Change: TypeAlias = OrderRow | FillRow | PositionRow | BalanceRow | ReservationRow


def needs(event: TradingEvent) -> Needs:
    """What ``event`` reads before it can be applied."""
    if isinstance(event, OrderFilled):
        spec = spec_of(event.instrument)
        return Needs(
            order_id=event.order_id,
            reservation=event.order_id,
            currencies=frozenset({spec.base, spec.quote, event.fee_currency}),
            instrument=event.instrument,
        )
    if isinstance(event, ORDER_EVENTS):
        return Needs(order_id=event.order_id)
    if isinstance(event, FundsDeposited):
        return Needs(currencies=frozenset({event.currency}))
    if isinstance(event, FundsReserved | FundsReleased):
        return Needs(reservation=event.order_id, currencies=frozenset({event.currency}))
    return Needs()


def account_slice(
    account: int,
    balances: Iterable[Balance],
    reservations: Mapping[str, Reservation],
    positions: Iterable[Position],
) -> Account:
    """The part of ``account`` that these rows hold, as the domain's :class:`Account`."""
    rows = list(balances)
    return Account(
        account=account,
        cash={row.currency: row.cash for row in rows},
        reserved={row.currency: row.reserved for row in rows if row.reserved},
        fees={row.currency: row.fees for row in rows},
        reservations=dict(reservations),
        positions={position.instrument: position for position in positions},
    )


def changes(event: TradingEvent, order: Order | None, account: Account) -> list[Change]:
    """The rows ``event`` changes, given the rows :func:`needs` named: ``order`` (``None``
    when it has no row yet) and ``account`` (its :func:`account_slice`).
    :class:`~trading.domain.orders.IllegalTransition` or
    :class:`~trading.domain.accounts.AccountError` when the domain refuses the event."""
    found: list[Change] = []
    if isinstance(event, ORDER_EVENTS):
        if order is not None:
            found.append(OrderRow(order.apply(event)))
        elif isinstance(event, OrderSubmitted):
            found.append(OrderRow(Order.submitted(event)))
        else:
            raise IllegalTransition(None, kind_of(event), "an event of an order never submitted")
        if isinstance(event, OrderFilled):
            found.append(FillRow(event))
    return found + _differences(account, account.apply(event))


def balances_of(account: Account) -> dict[str, Balance]:
    """Per currency the account has held: its cash, reserved and fees rows."""
    return {
        currency: Balance(
            currency=currency,
            cash=cash,
            reserved=account.reserved.get(currency, _ZERO),
            fees=account.fees.get(currency, _ZERO),
        )
        for currency, cash in account.cash.items()
    }


def _differences(before: Account, after: Account) -> list[Change]:
    found: list[Change] = []
    old = balances_of(before)
    for currency, balance in balances_of(after).items():
        if old.get(currency) != balance:
            found.append(BalanceRow(after.account, balance))
    for order_id in sorted(set(before.reservations) | set(after.reservations)):
        held = after.reservations.get(order_id)
        if before.reservations.get(order_id) != held:
            found.append(ReservationRow(after.account, order_id, held))
    for instrument, position in after.positions.items():
        if before.positions.get(instrument) != position:
            found.append(PositionRow(after.account, position))
    return found

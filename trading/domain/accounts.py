"""Spot accounts: cash per currency, reservations per order, a position per instrument.

An :class:`Account` is the fold of its events (:meth:`Account.apply`): deposits, reservations
and releases, kill-switch changes, the orders submitted (for the order rate) and the fills.
Spot means no borrowing: a buy pays the quote currency, a sell delivers the base currency,
and no cash balance ever goes below zero, nor below what the account's reservations hold
(:class:`AccountError` ``overdrawn`` otherwise). A fill draws first on its order's
reservation; what remains of it is released when the order ends (:meth:`Account.release`).

A position (:class:`~core.positions.Position`, in core: the gateway folds fills with the same
arithmetic) is signed and carries its average price and realised P&L in the quote currency;
fees are counted apart, per currency. Amounts are exact; only an average price is rounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, Context, Decimal
from typing import Final

import msgspec

from core.numbers import MAX_SCALE
from core.positions import Position
from core.trading_events import (
    FundsDeposited,
    FundsReleased,
    FundsReserved,
    KillSwitchSet,
    OrderFilled,
    OrderSide,
    OrderSubmitted,
    OrderType,
    TradingEvent,
)
from trading.domain.exact import EXACT, exact
from trading.domain.instruments import spec_of
from trading.domain.orders import OrderRequest

_RESERVE_STEP: Final = Decimal(1).scaleb(-MAX_SCALE)
_UP: Final = Context(prec=EXACT.prec, rounding=ROUND_CEILING)
MAX_RECENT_ORDERS: Final = 1000
"""The most submission times an account keeps for the order-rate check."""

_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)


class AccountError(ValueError):
    """An event the account cannot take: ``code`` is ``overdrawn`` (it would spend or reserve
    more than the account holds), ``no-reservation`` (a release beyond the order's
    reservation, or in another currency) or ``another-account``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Reservation(msgspec.Struct, frozen=True):
    currency: str
    amount: Decimal


@exact
def reservation_for(
    request: OrderRequest, last_price: Decimal | None, band_pct: Decimal, taker_fee: Decimal
) -> Reservation:
    """What ``request`` sets aside: a buy, its quote currency at the limit price (a market
    order: the last price, a stop-market order: its stop price, widened by the price band)
    times its quantity, plus the taker fee, rounded up to ``MAX_SCALE`` places; a sell, its
    quantity of the base currency. ``ValueError`` for a market buy with no last price."""
    spec = spec_of(request.instrument)
    if request.side is OrderSide.SELL:
        return Reservation(spec.base, request.quantity)
    if request.type is OrderType.LIMIT:
        assert request.price is not None
        price = request.price
    else:
        base = request.stop_price if request.type is OrderType.STOP_MARKET else last_price
        if base is None:
            raise ValueError("a market buy needs a last price to reserve against")
        price = base * (1 + band_pct / _HUNDRED)
    amount = price * request.quantity * (1 + taker_fee)
    return Reservation(spec.quote, amount.quantize(_RESERVE_STEP, context=_UP))


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """A spot account: the fold of its events. Never change its mappings in place."""

    account: int
    cash: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    """Per currency, reserved or not."""
    reserved: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    """Per currency: the sum of the reservations in it."""
    reservations: Mapping[str, Reservation] = msgspec.field(default_factory=dict)
    """Per order id, while the order holds one."""
    positions: Mapping[str, Position] = msgspec.field(default_factory=dict)
    fees: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    """Paid, per currency."""
    kill_switch: bool = False
    recent_orders: tuple[int, ...] = ()
    """When the newest orders were submitted (at most :data:`MAX_RECENT_ORDERS`)."""

    def balance(self, currency: str) -> Decimal:
        return self.cash.get(currency, _ZERO)

    def available(self, currency: str) -> Decimal:
        """What a new reservation or a fill beyond its reservation may take."""
        return EXACT.subtract(self.balance(currency), self.reserved.get(currency, _ZERO))

    def position(self, instrument: str) -> Position:
        return self.positions.get(instrument) or Position(instrument=instrument)

    @exact
    def apply(self, event: TradingEvent) -> Account:
        """This account after ``event`` (order events other than submissions and fills leave
        it as it is); :class:`AccountError` when it cannot take the event."""
        if event.account != self.account:
            raise AccountError("another-account", f"an event of account {event.account}")
        if isinstance(event, FundsDeposited):
            return self._moved({event.currency: event.amount})
        if isinstance(event, FundsReserved):
            return self._reserved(event)
        if isinstance(event, FundsReleased):
            return self._released(event)
        if isinstance(event, KillSwitchSet):
            return msgspec.structs.replace(self, kill_switch=event.on)
        if isinstance(event, OrderSubmitted):
            recent = (*self.recent_orders, event.ts)[-MAX_RECENT_ORDERS:]
            return msgspec.structs.replace(self, recent_orders=recent)
        if isinstance(event, OrderFilled):
            return self._settled(event)
        return self

    def release(self, order_id: str, ts: int) -> FundsReleased | None:
        """The event that frees what remains of ``order_id``'s reservation (``None``: it
        holds none), for when the order ends."""
        held = self.reservations.get(order_id)
        if held is None:
            return None
        return FundsReleased(
            account=self.account,
            order_id=order_id,
            currency=held.currency,
            amount=held.amount,
            ts=ts,
        )

    def adjust(
        self, order_id: str, needed: Reservation, ts: int
    ) -> FundsReserved | FundsReleased | None:
        """The event that brings ``order_id``'s reservation to ``needed`` (after an amend);
        ``None`` when it is there already."""
        held = self.reservations.get(order_id, Reservation(needed.currency, _ZERO))
        if held.currency != needed.currency:
            raise AccountError("no-reservation", f"order {order_id} holds {held.currency}")
        change = needed.amount - held.amount
        if change == 0:
            return None
        kind = FundsReserved if change > 0 else FundsReleased
        return kind(
            account=self.account,
            order_id=order_id,
            currency=needed.currency,
            amount=abs(change),
            ts=ts,
        )

    # -- folding ------------------------------------------------------------------------------

    def _moved(self, flows: Mapping[str, Decimal]) -> Account:
        """This account with ``flows`` added to its cash; ``overdrawn`` when a currency they
        touch would hold less than what is reserved in it."""
        cash = dict(self.cash)
        for currency, amount in flows.items():
            cash[currency] = cash.get(currency, _ZERO) + amount
        moved = msgspec.structs.replace(self, cash=cash)
        for currency in flows:
            if moved.available(currency) < 0:
                raise AccountError(
                    "overdrawn",
                    f"{currency} would be {moved.balance(currency)} with"
                    f" {moved.reserved.get(currency, _ZERO)} reserved",
                )
        return moved

    def _held(self, order_id: str, currency: str, change: Decimal) -> Account:
        """This account with ``change`` more (or less) held for ``order_id`` in ``currency``
        (the reservation is gone when nothing is left of it)."""
        held = self.reservations.get(order_id)
        amount = change + (held.amount if held else _ZERO)
        reservations = dict(self.reservations)
        if amount:
            reservations[order_id] = Reservation(currency, amount)
        else:
            reservations.pop(order_id, None)
        reserved = dict(self.reserved)
        total = reserved.get(currency, _ZERO) + change
        if total:
            reserved[currency] = total
        else:
            reserved.pop(currency, None)
        return msgspec.structs.replace(self, reservations=reservations, reserved=reserved)

    def _reserved(self, event: FundsReserved) -> Account:
        held = self.reservations.get(event.order_id)
        if held is not None and held.currency != event.currency:
            raise AccountError(
                "no-reservation", f"order {event.order_id} already holds {held.currency}"
            )
        return self._held(event.order_id, event.currency, event.amount)._moved(
            {event.currency: _ZERO}
        )

    def _released(self, event: FundsReleased) -> Account:
        held = self.reservations.get(event.order_id)
        if held is None or held.currency != event.currency or held.amount < event.amount:
            raise AccountError(
                "no-reservation",
                f"order {event.order_id} holds {held or 'nothing'}, cannot release"
                f" {event.amount} {event.currency}",
            )
        return self._held(event.order_id, event.currency, -event.amount)

    def _settled(self, fill: OrderFilled) -> Account:
        spec = spec_of(fill.instrument)
        notional = fill.price * fill.quantity
        if fill.side is OrderSide.BUY:
            flows = {spec.quote: -notional, spec.base: fill.quantity}
        else:
            flows = {spec.base: -fill.quantity, spec.quote: notional}
        flows[fill.fee_currency] = flows.get(fill.fee_currency, _ZERO) - fill.fee
        account = self
        held = self.reservations.get(fill.order_id)
        if held is not None:  # the fill draws on its order's reservation first
            spent = min(max(-flows.get(held.currency, _ZERO), _ZERO), held.amount)
            account = account._held(fill.order_id, held.currency, -spent)
        fees = {**self.fees, fill.fee_currency: self.fees.get(fill.fee_currency, _ZERO) + fill.fee}
        position = self.position(fill.instrument).traded(fill.side, fill.quantity, fill.price)
        return msgspec.structs.replace(
            account._moved(flows),
            fees=fees,
            positions={**self.positions, fill.instrument: position},
        )


def fold_account(account: int, events: Iterable[TradingEvent]) -> Account:
    """The account ``account`` after ``events`` (from empty)."""
    state = Account(account=account)
    for event in events:
        state = state.apply(event)
    return state

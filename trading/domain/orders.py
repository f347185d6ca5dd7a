"""Orders: the requests a bot sends, and an order's state as the fold of its events.

A request (:class:`OrderRequest`, :class:`AmendRequest`, :class:`CancelRequest`) checks itself
when it is built and refuses with :class:`OrderInvalid` naming the field. An :class:`Order`
is the fold of its events (:func:`fold`); :meth:`Order.apply` follows the strict state machine
of :func:`legal` (Nautilus Trader's, ``docs/trading.md``, "Order model") and raises
:class:`IllegalTransition` on anything else: an illegal transition is an error, never fixed
silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Final, TypeAlias

import msgspec

from core.instruments import validate_instrument
from core.numbers import MAX_SCALE, scale_of
from core.trading_events import (
    ID_PATTERN,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    OrderTriggered,
    OrderType,
    OrderUpdated,
    TimeInForce,
    kind_of,
)
from trading.domain.exact import EXACT, exact

MAX_DIGITS: Final = 15
"""A quantity or price is below ``10**MAX_DIGITS``; with at most ``MAX_SCALE`` (18) decimal
places, a price times a quantity stays within what ``trading.events`` carries."""

_ID: Final = re.compile(ID_PATTERN)

_ZERO: Final = Decimal(0)


class OrderInvalid(ValueError):  # noqa: N818 (the contract's name)
    """A request refused before it became an order: ``field`` names the field, ``code`` is one
    of ours (``required``, ``forbidden``, ``not-a-number``, ``not-positive``, ``too-precise``,
    ``too-large``, ``format``, ``unknown``, ``not-open``, ``below-filled``)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message


class IllegalTransition(ValueError):  # noqa: N818 (the contract's name)
    """An event the order's state machine does not allow in its status (our code:
    ``illegal-transition``)."""

    code: Final = "illegal-transition"

    def __init__(self, status: OrderStatus | None, event_kind: str, why: str = "") -> None:
        where = "before the order was submitted" if status is None else f"in status {status}"
        super().__init__(f"illegal transition: {event_kind} {where}" + (f" ({why})" if why else ""))
        self.status = status
        self.event_kind = event_kind


# -- requests -------------------------------------------------------------------------------


def check_amount(value: object, field: str) -> Decimal:
    """``value`` if it is a positive exact decimal with at most ``MAX_SCALE`` decimal places,
    below ``10**MAX_DIGITS``; else :class:`OrderInvalid` naming ``field``."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise OrderInvalid(field, "not-a-number", f"must be a finite decimal number, got {value}")
    if value <= _ZERO:
        raise OrderInvalid(field, "not-positive", f"must be positive, got {value}")
    if value.adjusted() >= MAX_DIGITS:
        raise OrderInvalid(field, "too-large", f"must be below 10**{MAX_DIGITS}, got {value}")
    if scale_of(value) > MAX_SCALE:
        raise OrderInvalid(
            field, "too-precise", f"must have at most {MAX_SCALE} decimal places, got {value}"
        )
    return value


def _check_prices(type_: OrderType, price: Decimal | None, stop_price: Decimal | None) -> None:
    """A limit order has a price and no stop price, a stop-market order a stop price and no
    price, a market order neither."""
    needs_price, needs_stop = type_ is OrderType.LIMIT, type_ is OrderType.STOP_MARKET
    for field, value, needed in (
        ("price", price, needs_price),
        ("stop_price", stop_price, needs_stop),
    ):
        if needed and value is None:
            raise OrderInvalid(field, "required", f"a {type_} order needs a {field}")
        if not needed and value is not None:
            raise OrderInvalid(field, "forbidden", f"a {type_} order has no {field}")
        if value is not None:
            check_amount(value, field)


def _check_enum(value: object, kind: type[OrderSide | OrderType | TimeInForce], field: str) -> None:
    if not isinstance(value, kind):
        known = ", ".join(member.value for member in kind)
        raise OrderInvalid(field, "unknown", f"must be a {kind.__name__} ({known}), got {value!r}")


def _check_account(account: object) -> None:
    if not isinstance(account, int) or isinstance(account, bool) or not 0 <= account < 2**63:
        raise OrderInvalid("account", "format", f"must be an account id, got {account!r}")


def _check_id(value: object, field: str) -> None:
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise OrderInvalid(field, "format", "must be 1 to 64 of A-Z a-z 0-9 . _ : -")


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A new order as a bot asks for it, valid once built."""

    account: int
    client_order_id: str
    instrument: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC

    def __post_init__(self) -> None:
        _check_account(self.account)
        _check_id(self.client_order_id, "client_order_id")
        try:
            validate_instrument(self.instrument)
        except ValueError as exc:
            raise OrderInvalid("instrument", "format", str(exc)) from None
        _check_enum(self.side, OrderSide, "side")
        _check_enum(self.type, OrderType, "type")
        _check_enum(self.time_in_force, TimeInForce, "time_in_force")
        check_amount(self.quantity, "quantity")
        _check_prices(self.type, self.price, self.stop_price)

    def submitted(self, order_id: str, ts: int) -> OrderSubmitted:
        """The event that opens the order ``order_id`` for this request."""
        return OrderSubmitted(
            account=self.account,
            order_id=order_id,
            client_order_id=self.client_order_id,
            instrument=self.instrument,
            side=self.side,
            type=self.type,
            quantity=self.quantity,
            price=self.price,
            stop_price=self.stop_price,
            time_in_force=self.time_in_force,
            ts=ts,
        )


class AmendRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Change an open order's quantity, price or stop price (what is ``None`` stays)."""

    account: int
    order_id: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None

    def __post_init__(self) -> None:
        _check_account(self.account)
        _check_id(self.order_id, "order_id")
        changes = {"quantity": self.quantity, "price": self.price, "stop_price": self.stop_price}
        if all(value is None for value in changes.values()):
            raise OrderInvalid("quantity", "required", "an amend changes quantity or a price")
        for field, value in changes.items():
            if value is not None:
                check_amount(value, field)


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    account: int
    order_id: str

    def __post_init__(self) -> None:
        _check_account(self.account)
        _check_id(self.order_id, "order_id")


# -- the state machine ----------------------------------------------------------------------

S = OrderStatus
_FILLS: Final = frozenset({S.PARTIALLY_FILLED, S.FILLED})

TRANSITIONS: Final[Mapping[tuple[OrderStatus, str], frozenset[OrderStatus]]] = {
    (S.SUBMITTED, "order-denied"): frozenset({S.DENIED}),
    (S.SUBMITTED, "order-accepted"): frozenset({S.ACCEPTED}),
    (S.SUBMITTED, "order-rejected"): frozenset({S.REJECTED}),
    (S.ACCEPTED, "order-triggered"): frozenset({S.TRIGGERED}),
    (S.ACCEPTED, "order-updated"): frozenset({S.ACCEPTED}),
    (S.ACCEPTED, "order-filled"): _FILLS,
    (S.ACCEPTED, "order-canceled"): frozenset({S.CANCELED}),
    (S.ACCEPTED, "order-expired"): frozenset({S.EXPIRED}),
    (S.TRIGGERED, "order-filled"): _FILLS,
    (S.TRIGGERED, "order-canceled"): frozenset({S.CANCELED}),
    (S.TRIGGERED, "order-expired"): frozenset({S.EXPIRED}),
    (S.PARTIALLY_FILLED, "order-updated"): frozenset({S.PARTIALLY_FILLED}),
    (S.PARTIALLY_FILLED, "order-filled"): _FILLS,
    (S.PARTIALLY_FILLED, "order-canceled"): frozenset({S.CANCELED}),
    (S.PARTIALLY_FILLED, "order-expired"): frozenset({S.EXPIRED}),
}
"""(status, event kind) -> the statuses it may lead to; a pair not here is illegal. A fill
leads to ``filled`` when it fills the rest, else to ``partially-filled``."""

ONLY_FOR: Final[Mapping[tuple[OrderStatus, str], frozenset[OrderType]]] = {
    (S.ACCEPTED, "order-triggered"): frozenset({OrderType.STOP_MARKET}),
    (S.ACCEPTED, "order-filled"): frozenset({OrderType.MARKET, OrderType.LIMIT}),
    (S.ACCEPTED, "order-updated"): frozenset({OrderType.LIMIT, OrderType.STOP_MARKET}),
    (S.PARTIALLY_FILLED, "order-updated"): frozenset({OrderType.LIMIT}),
}
"""Transitions of :data:`TRANSITIONS` that only some order types have: only a stop-market
order triggers, and it fills only once triggered; a market order is never amended, a
stop-market order only before it triggers."""

TERMINAL: Final = frozenset({S.DENIED, S.REJECTED, S.FILLED, S.CANCELED, S.EXPIRED})
OPEN: Final = frozenset({S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED})
"""An order the venue holds: it may still fill, and it may be canceled or amended."""


def legal(type_: OrderType, status: OrderStatus, kind: str) -> frozenset[OrderStatus]:
    """The statuses the event ``kind`` may lead an order of ``type_`` in ``status`` to (empty:
    the event is illegal there)."""
    only = ONLY_FOR.get((status, kind))
    if only is not None and type_ not in only:
        return frozenset()
    return TRANSITIONS.get((status, kind), frozenset())


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """An order's state: the fold of its events."""

    account: int
    order_id: str
    client_order_id: str
    instrument: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: Decimal = _ZERO
    filled_notional: Decimal = _ZERO
    """The sum of price * quantity of the fills, exact."""
    fill_ids: frozenset[str] = frozenset()
    venue_order_id: str | None = None
    reason_code: str | None = None
    """Why it was denied or rejected: our code (a risk code, or the venue's)."""
    reason_field: str | None = None
    """The request field a denial blames, when one does."""
    reason: str | None = None
    """What the denial or the rejection said, for people."""
    ts_submitted: int = 0
    ts_last: int = 0
    triggered_by: int | None = None
    """The trade (its ``trade_id``) that triggered a stop, once it has."""
    ts_triggered: int | None = None
    """When that trade printed (its ``ts_event``): where a stop joins the takers."""

    @classmethod
    def submitted(cls, event: OrderSubmitted) -> Order:
        return cls(
            account=event.account,
            order_id=event.order_id,
            client_order_id=event.client_order_id,
            instrument=event.instrument,
            side=event.side,
            type=event.type,
            quantity=event.quantity,
            price=event.price,
            stop_price=event.stop_price,
            time_in_force=event.time_in_force,
            status=S.SUBMITTED,
            ts_submitted=event.ts,
            ts_last=event.ts,
        )

    @property
    def remaining(self) -> Decimal:
        return EXACT.subtract(self.quantity, self.filled_quantity)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @exact
    def apply(self, event: OrderEvent) -> Order:
        """This order after ``event``; :class:`IllegalTransition` when the state machine does
        not allow it here, or it does not fit the order (another order's event, a fill of
        more than remains or beyond the limit price, a fill seen before, an amend that does
        not fit the order type or leaves nothing to fill)."""
        kind = kind_of(event)
        if not legal(self.type, self.status, kind):
            raise IllegalTransition(self.status, kind)
        if (event.account, event.order_id) != (self.account, self.order_id):
            raise IllegalTransition(self.status, kind, "an event of another order")
        moved = _APPLY[type(event)](self, event)
        return msgspec.structs.replace(moved, ts_last=event.ts)


_Step: TypeAlias = Callable[[Order, OrderEvent], Order]


def _illegal(order: Order, event: OrderEvent, why: str) -> IllegalTransition:
    return IllegalTransition(order.status, kind_of(event), why)


def _accepted(order: Order, event: OrderEvent) -> Order:
    assert isinstance(event, OrderAccepted)
    return msgspec.structs.replace(order, status=S.ACCEPTED, venue_order_id=event.venue_order_id)


def _refused(order: Order, event: OrderEvent) -> Order:
    assert isinstance(event, OrderDenied | OrderRejected)
    field = event.field if isinstance(event, OrderDenied) else None
    status = S.DENIED if isinstance(event, OrderDenied) else S.REJECTED
    return msgspec.structs.replace(
        order,
        status=status,
        reason_code=event.reason_code,
        reason_field=field,
        reason=event.message,
    )


def _ended(status: OrderStatus) -> _Step:
    def step(order: Order, event: OrderEvent) -> Order:
        return msgspec.structs.replace(order, status=status)

    return step


def _triggered(order: Order, event: OrderEvent) -> Order:
    assert isinstance(event, OrderTriggered)
    return msgspec.structs.replace(
        order, status=S.TRIGGERED, triggered_by=event.trade_id, ts_triggered=event.ts
    )


def _updated(order: Order, event: OrderEvent) -> Order:
    assert isinstance(event, OrderUpdated)
    try:
        _check_prices(order.type, event.price, event.stop_price)
    except OrderInvalid as exc:
        raise _illegal(order, event, str(exc)) from None
    if event.quantity <= order.filled_quantity:
        raise _illegal(order, event, f"quantity {event.quantity} leaves nothing to fill")
    return msgspec.structs.replace(
        order, quantity=event.quantity, price=event.price, stop_price=event.stop_price
    )


def _filled(order: Order, event: OrderEvent) -> Order:
    assert isinstance(event, OrderFilled)
    if (event.instrument, event.side) != (order.instrument, order.side):
        raise _illegal(order, event, "a fill of another instrument or side")
    if event.fill_id in order.fill_ids:
        raise _illegal(order, event, f"fill {event.fill_id} was applied before")
    if event.quantity > order.remaining:
        raise _illegal(order, event, f"fill of {event.quantity} but {order.remaining} remains")
    if order.time_in_force is TimeInForce.FOK and event.quantity != order.remaining:
        raise _illegal(order, event, "a fill-or-kill order fills whole or not at all")
    if order.price is not None and _beyond_limit(order.side, event.price, order.price):
        raise _illegal(order, event, f"fill at {event.price} beyond the limit {order.price}")
    filled = order.filled_quantity + event.quantity
    return msgspec.structs.replace(
        order,
        status=S.FILLED if filled == order.quantity else S.PARTIALLY_FILLED,
        filled_quantity=filled,
        filled_notional=order.filled_notional + event.price * event.quantity,
        fill_ids=order.fill_ids | {event.fill_id},
    )


def _beyond_limit(side: OrderSide, price: Decimal, limit: Decimal) -> bool:
    return price > limit if side is OrderSide.BUY else price < limit


_APPLY: Final[Mapping[type[OrderEvent], _Step]] = {
    OrderAccepted: _accepted,
    OrderDenied: _refused,
    OrderRejected: _refused,
    OrderTriggered: _triggered,
    OrderUpdated: _updated,
    OrderFilled: _filled,
    OrderCanceled: _ended(S.CANCELED),
    OrderExpired: _ended(S.EXPIRED),
}


def fold(events: Iterable[OrderEvent]) -> Order:
    """The order whose events are ``events``, its ``order-submitted`` first."""
    order: Order | None = None
    for event in events:
        if order is not None:
            order = order.apply(event)
        elif isinstance(event, OrderSubmitted):
            order = Order.submitted(event)
        else:
            raise IllegalTransition(None, kind_of(event))
    if order is None:
        raise ValueError("an order has at least its order-submitted event")
    return order


# -- amend and cancel -----------------------------------------------------------------------


def _open(order: Order, what: str) -> None:
    if not order.is_open:
        raise OrderInvalid(
            "order_id", "not-open", f"cannot {what} an order in status {order.status}"
        )


def amend(order: Order, request: AmendRequest, ts: int) -> OrderUpdated:
    """The event of ``request`` on ``order``; :class:`OrderInvalid` when the order cannot take
    it (not open, a market or triggered order, a price it has no use for, a quantity not above
    what has filled)."""
    _open(order, "amend")
    if not legal(order.type, order.status, "order-updated"):
        raise OrderInvalid(
            "order_id", "not-open", f"a {order.type} order in status {order.status} is not amended"
        )
    quantity = order.quantity if request.quantity is None else request.quantity
    price = order.price if request.price is None else request.price
    stop_price = order.stop_price if request.stop_price is None else request.stop_price
    _check_prices(order.type, price, stop_price)
    if quantity <= order.filled_quantity:
        raise OrderInvalid(
            "quantity", "below-filled", f"must be above the {order.filled_quantity} filled"
        )
    return OrderUpdated(
        account=order.account,
        order_id=order.order_id,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        ts=ts,
    )


def cancel(order: Order, ts: int, reason: str = "canceled by the client") -> OrderCanceled:
    """The event that cancels the open ``order`` (:class:`OrderInvalid` when it is not open)."""
    _open(order, "cancel")
    return OrderCanceled(account=order.account, order_id=order.order_id, reason=reason, ts=ts)

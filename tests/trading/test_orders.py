"""Order requests refuse what is invalid naming the field; an order follows the strict state
machine: every legal path folds, and every other (status, event) pair is refused."""

from __future__ import annotations

import itertools
from decimal import Decimal

import msgspec
import pytest

from core import trading_events as te
from tests.trading.factories import event, request, submitted
from trading.domain.orders import (
    OPEN,
    TERMINAL,
    AmendRequest,
    CancelRequest,
    IllegalTransition,
    Order,
    OrderInvalid,
    amend,
    cancel,
    fold,
    legal,
)

D = Decimal
S = te.OrderStatus
T = te.OrderType
KINDS = [te.kind_of(kind) for kind in te.ORDER_EVENTS]
VARIANTS = {"order-filled": ("part", "rest")}


# -- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "changes", "field", "code"),
    [
        (T.LIMIT, {"account": -1}, "account", "format"),
        (T.LIMIT, {"account": True}, "account", "format"),
        (T.LIMIT, {"client_order_id": ""}, "client_order_id", "format"),
        (T.LIMIT, {"client_order_id": "x" * 65}, "client_order_id", "format"),
        (T.LIMIT, {"client_order_id": "a b"}, "client_order_id", "format"),
        (T.LIMIT, {"instrument": "btcusd"}, "instrument", "format"),
        (T.LIMIT, {"side": "short"}, "side", "unknown"),
        (T.LIMIT, {"type": "iceberg"}, "type", "unknown"),
        (T.LIMIT, {"time_in_force": "day"}, "time_in_force", "unknown"),
        (T.LIMIT, {"quantity": D("0")}, "quantity", "not-positive"),
        (T.LIMIT, {"quantity": D("-1")}, "quantity", "not-positive"),
        (T.LIMIT, {"quantity": D("NaN")}, "quantity", "not-a-number"),
        (T.LIMIT, {"quantity": D("Infinity")}, "quantity", "not-a-number"),
        (T.LIMIT, {"quantity": 1.5}, "quantity", "not-a-number"),
        (T.LIMIT, {"quantity": D("1E+15")}, "quantity", "too-large"),
        (T.LIMIT, {"quantity": D("1E-19")}, "quantity", "too-precise"),
        (T.LIMIT, {"price": None}, "price", "required"),
        (T.LIMIT, {"price": D("0")}, "price", "not-positive"),
        (T.LIMIT, {"stop_price": D("1")}, "stop_price", "forbidden"),
        (T.MARKET, {"price": D("1")}, "price", "forbidden"),
        (T.MARKET, {"stop_price": D("1")}, "stop_price", "forbidden"),
        (T.STOP_MARKET, {"stop_price": None}, "stop_price", "required"),
        (T.STOP_MARKET, {"price": D("1")}, "price", "forbidden"),
        (T.STOP_MARKET, {"stop_price": D("1.0000000000000000001")}, "stop_price", "too-precise"),
    ],
)
def test_an_invalid_order_request_is_refused_naming_the_field(
    type_: te.OrderType, changes: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(OrderInvalid) as refused:
        request(type_, **changes)
    assert (refused.value.field, refused.value.code) == (field, code)
    assert str(refused.value).startswith(f"{field}: ")


@pytest.mark.parametrize("type_", list(T))
@pytest.mark.parametrize("tif", list(te.TimeInForce))
def test_every_order_type_and_time_in_force_is_a_valid_request(
    type_: te.OrderType, tif: te.TimeInForce
) -> None:
    made = request(type_, time_in_force=tif, quantity=D("0.000000000000000001"))
    opened = made.submitted("o-9", ts=5)
    assert (opened.type, opened.time_in_force, opened.quantity) == (type_, tif, made.quantity)
    assert Order.submitted(opened).status is S.SUBMITTED


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({}, "quantity", "required"),
        ({"quantity": D("-2")}, "quantity", "not-positive"),
        ({"price": D("1E+20")}, "price", "too-large"),
        ({"order_id": "", "price": D("1")}, "order_id", "format"),
    ],
)
def test_an_invalid_amend_is_refused_naming_the_field(
    changes: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(OrderInvalid) as refused:
        AmendRequest(**{"account": 7, "order_id": "o-1", **changes})  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.code) == (field, code)


def test_a_cancel_names_an_order_id() -> None:
    with pytest.raises(OrderInvalid) as refused:
        CancelRequest(account=7, order_id="x" * 65)
    assert (refused.value.field, refused.value.code) == ("order_id", "format")


# -- the state machine ----------------------------------------------------------------------


def expected(type_: te.OrderType, status: te.OrderStatus, kind: str, variant: str) -> S | None:
    """The documented machine, written out again from docs/trading.md ("Order model"):
    where ``kind`` leads an order of ``type_`` in ``status`` (``None``: refused)."""
    fill = S.PARTIALLY_FILLED if variant == "part" else S.FILLED
    stop = type_ is T.STOP_MARKET
    table: dict[S, dict[str, S | None]] = {
        S.SUBMITTED: {
            "order-denied": S.DENIED,
            "order-accepted": S.ACCEPTED,
            "order-rejected": S.REJECTED,
        },
        S.ACCEPTED: {
            "order-triggered": S.TRIGGERED if stop else None,
            "order-updated": None if type_ is T.MARKET else S.ACCEPTED,
            "order-filled": None if stop else fill,
            "order-canceled": S.CANCELED,
            "order-expired": S.EXPIRED,
        },
        S.TRIGGERED: {
            "order-filled": fill,
            "order-canceled": S.CANCELED,
            "order-expired": S.EXPIRED,
        },
        S.PARTIALLY_FILLED: {
            "order-updated": S.PARTIALLY_FILLED if type_ is T.LIMIT else None,
            "order-filled": fill,
            "order-canceled": S.CANCELED,
            "order-expired": S.EXPIRED,
        },
    }
    return table.get(status, {}).get(kind)


def paths(type_: te.OrderType, most: int = 2) -> list[list[te.OrderEvent]]:
    """Every path of events from ``order-submitted`` to an end, each kind at most ``most``
    times (an amend or a partial fill may repeat without end otherwise)."""
    found: list[list[te.OrderEvent]] = []

    def walk(order: Order, path: list[te.OrderEvent]) -> None:
        if order.is_terminal:
            found.append(path)
            return
        for kind in KINDS:
            seen = sum(te.kind_of(e) == kind for e in path)
            for variant in VARIANTS.get(kind, ("",)):
                if legal(type_, order.status, kind) and seen < most:
                    step = event(kind, order, variant)
                    walk(order.apply(step), [*path, step])

    first = submitted(type_)
    walk(Order.submitted(first), [first])
    return found


def reachable(type_: te.OrderType) -> dict[S, list[te.OrderEvent]]:
    """A shortest path to each status an order of ``type_`` can be in."""
    to: dict[S, list[te.OrderEvent]] = {}
    for path in sorted(
        (p[:n] for p in paths(type_) for n in range(1, len(p) + 1)), key=len, reverse=True
    ):
        to[fold(path).status] = path
    return to


@pytest.mark.parametrize("type_", list(T))
def test_every_legal_path_folds_to_its_end(type_: te.OrderType) -> None:
    found = paths(type_)
    steps = {(fold(p[:n]).status, te.kind_of(p[n])) for p in found for n in range(1, len(p))}
    allowed = {
        (status, kind)
        for status, kind in itertools.product(S, KINDS)
        if expected(type_, status, kind, "part")
        and (status is not S.TRIGGERED or type_ is T.STOP_MARKET)
    }
    assert steps == allowed  # every legal transition is on some path
    for path in found:
        order = fold(path)
        assert order.is_terminal
        variant = "rest" if order.status is S.FILLED else "part"
        assert order.status == expected(
            type_, fold(path[:-1]).status, te.kind_of(path[-1]), variant
        )
        assert order.filled_quantity == sum(
            (e.quantity for e in path if isinstance(e, te.OrderFilled)), D(0)
        )
        assert order.filled_quantity == order.quantity or order.status is not S.FILLED


@pytest.mark.parametrize("type_", list(T))
def test_the_statuses_an_order_type_reaches(type_: te.OrderType) -> None:
    statuses = set(S) if type_ is T.STOP_MARKET else set(S) - {S.TRIGGERED}
    assert set(reachable(type_)) == statuses


TABLE = [
    (type_, status, kind, variant)
    for type_, status, kind in itertools.product(T, S, KINDS)
    for variant in VARIANTS.get(kind, ("",))
    if status is not S.TRIGGERED or type_ is T.STOP_MARKET
]


@pytest.mark.parametrize(("type_", "status", "kind", "variant"), TABLE)
def test_every_status_and_event_pair_moves_as_documented_or_is_refused(
    type_: te.OrderType, status: te.OrderStatus, kind: str, variant: str
) -> None:
    order = fold(reachable(type_)[status])
    assert order.status is status
    step = event(kind, order, variant)
    target = expected(type_, status, kind, variant)
    if target is None:
        with pytest.raises(IllegalTransition, match=f"^illegal transition: {kind} in status "):
            order.apply(step)
        return
    moved = order.apply(step)
    assert moved.status is target
    assert moved.ts_last == step.ts


def test_terminal_and_open_statuses_are_told_apart() -> None:
    assert {S.DENIED, S.REJECTED, S.FILLED, S.CANCELED, S.EXPIRED} == TERMINAL
    assert {S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED} == OPEN


def accepted(type_: te.OrderType = T.LIMIT) -> Order:
    order = Order.submitted(submitted(type_))
    return order.apply(event("order-accepted", order))


def with_fill(order: Order, **changes: object) -> te.OrderFilled:
    fill = event("order-filled", order, "part")
    assert isinstance(fill, te.OrderFilled)
    return msgspec.structs.replace(fill, **changes)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"quantity": D("2.0000001")}, "fill of 2.0000001 but 2 remains"),
        ({"price": D("100.01")}, "fill at 100.01 beyond the limit 100"),
        ({"side": te.OrderSide.SELL}, "a fill of another instrument or side"),
        ({"instrument": "KRAKEN:ETHUSDT"}, "a fill of another instrument or side"),
        ({"order_id": "o-2"}, "an event of another order"),
        ({"account": 8}, "an event of another order"),
    ],
)
def test_a_fill_that_does_not_fit_the_order_is_illegal(
    changes: dict[str, object], why: str
) -> None:
    order = accepted()
    with pytest.raises(IllegalTransition, match=f"in status accepted \\({why}\\)$") as refused:
        order.apply(with_fill(order, **changes))
    assert (refused.value.status, refused.value.event_kind) == (S.ACCEPTED, "order-filled")
    assert refused.value.code == "illegal-transition"


def test_a_fill_seen_before_is_illegal_and_a_sell_limit_fills_at_or_above_its_price() -> None:
    order = accepted()
    fill = with_fill(order, quantity=D("1"), price=D("99"))
    once = order.apply(fill)
    with pytest.raises(IllegalTransition, match="fill f-0 was applied before"):
        once.apply(msgspec.structs.replace(fill, ts=9))
    sell = msgspec.structs.replace(accepted(), side=te.OrderSide.SELL)
    with pytest.raises(IllegalTransition, match="beyond the limit"):
        sell.apply(with_fill(sell, price=D("99.99")))
    assert sell.apply(with_fill(sell, price=D("100.5"))).filled_notional == D("100.5")


def test_a_fill_or_kill_order_fills_whole_or_not_at_all() -> None:
    opened = request(time_in_force=te.TimeInForce.FOK).submitted("o-1", ts=1)
    order = Order.submitted(opened)
    order = order.apply(event("order-accepted", order))
    with pytest.raises(IllegalTransition, match="fills whole or not at all"):
        order.apply(with_fill(order))
    assert order.apply(event("order-filled", order, "rest")).status is S.FILLED


def test_fills_add_up_exactly() -> None:
    order = accepted()
    for price in ("99.5", "99.25", "98"):
        order = order.apply(with_fill(order, quantity=order.remaining / 2, price=D(price)))
    assert (order.filled_quantity, order.remaining, order.status) == (
        D("1.75"),
        D("0.25"),
        S.PARTIALLY_FILLED,
    )
    assert order.filled_notional == D("99.5") + D("0.5") * D("99.25") + D("0.25") * D("98")


@pytest.mark.parametrize(
    ("type_", "changes", "why"),
    [
        (T.LIMIT, {"price": None}, "price: a limit order needs a price"),
        (T.LIMIT, {"stop_price": D("1")}, "stop_price: a limit order has no stop_price"),
        (T.STOP_MARKET, {"stop_price": None}, "stop_price: a stop-market order needs a"),
        (T.LIMIT, {"quantity": D("0.5")}, None),
    ],
)
def test_an_update_that_does_not_fit_the_order_is_illegal(
    type_: te.OrderType, changes: dict[str, object], why: str | None
) -> None:
    order = accepted(type_)
    if why is None:  # below what has filled
        order = order.apply(with_fill(order, quantity=D("1")))
        why = "quantity 0.5 leaves nothing to fill"
    update = msgspec.structs.replace(event("order-updated", order), **changes)
    with pytest.raises(IllegalTransition, match=why):
        order.apply(update)


def test_a_fold_starts_with_the_submission() -> None:
    order = accepted()
    with pytest.raises(IllegalTransition, match="order-accepted before the order was submitted"):
        fold([event("order-accepted", order)])
    with pytest.raises(ValueError, match="at least its order-submitted"):
        fold([])
    with pytest.raises(IllegalTransition, match="order-submitted in status accepted"):
        order.apply(submitted(T.LIMIT))


# -- amend and cancel -----------------------------------------------------------------------


def test_an_amend_keeps_what_it_does_not_change() -> None:
    order = accepted()
    update = amend(order, AmendRequest(account=7, order_id="o-1", price=D("101")), ts=3)
    assert (update.quantity, update.price, update.stop_price) == (D("2"), D("101"), None)
    amended = order.apply(update)
    assert (amended.status, amended.price) == (S.ACCEPTED, D("101"))


@pytest.mark.parametrize(
    ("order", "changes", "field", "code"),
    [
        (accepted(T.MARKET), {"quantity": D("1")}, "order_id", "not-open"),
        (accepted(T.LIMIT), {"stop_price": D("1")}, "stop_price", "forbidden"),
        (accepted(T.STOP_MARKET), {"price": D("1")}, "price", "forbidden"),
        (Order.submitted(submitted(T.LIMIT)), {"quantity": D("1")}, "order_id", "not-open"),
    ],
)
def test_an_amend_the_order_cannot_take_is_refused(
    order: Order, changes: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(OrderInvalid) as refused:
        amend(order, AmendRequest(account=7, order_id="o-1", **changes), ts=3)  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.code) == (field, code)


def test_an_amend_must_leave_something_to_fill() -> None:
    order = accepted()
    order = order.apply(with_fill(order, quantity=D("1.5")))
    with pytest.raises(OrderInvalid) as refused:
        amend(order, AmendRequest(account=7, order_id="o-1", quantity=D("1.5")), ts=3)
    assert (refused.value.field, refused.value.code) == ("quantity", "below-filled")
    assert order.apply(amend(order, AmendRequest(account=7, order_id="o-1", quantity=D("3")), ts=3))


def test_only_an_open_order_is_canceled() -> None:
    order = accepted()
    canceled = order.apply(cancel(order, ts=4))
    assert canceled.status is S.CANCELED
    with pytest.raises(OrderInvalid) as refused:
        cancel(canceled, ts=5)
    assert (refused.value.field, refused.value.code) == ("order_id", "not-open")

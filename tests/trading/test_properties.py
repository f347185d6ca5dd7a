"""Properties of the domain on random sequences of deposits, trades, orders, fills, cancels,
amends and expiries, run the way the order saga runs them (risk check, reserve, accept, settle
each fill, release what remains):

- money and positions are conserved: each currency's cash is its deposits plus the cash flows
  of the fills less their fees, each position the sum of its fills, and the P&L adds up;
- no balance goes below zero, nor below what the reservations hold;
- nothing stays reserved for an order that has ended, and once every order has ended nothing
  is reserved at all;
- the account and every order equal the fold of the events from scratch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, localcontext

import msgspec
from hypothesis import event as label
from hypothesis import given, settings
from hypothesis import strategies as st

from core import trading_events as te
from core.positions import unrealised
from trading.domain.accounts import Account, fold_account, reservation_for
from trading.domain.exact import EXACT
from trading.domain.instruments import spec_of
from trading.domain.orders import (
    AmendRequest,
    Order,
    OrderInvalid,
    OrderRequest,
    amend,
    cancel,
    fold,
)
from trading.domain.risk import RiskLimits, RiskRefused, check

D = Decimal
INSTRUMENTS = ("SYNTH:BTCUSD", "SYNTH:ETHUSD", "BINANCE:ETHBTC")
CURRENCIES = ("USD", "BTC", "ETH")
LIMITS = RiskLimits(
    max_order_notional=D(20_000),
    max_position=D(30),
    price_band_pct=D(5),
    orders_per_second=5,
    taker_fee=D("0.001"),
)
STEP = D("0.00000001")


def amounts(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low * 10**places, high * 10**places).map(lambda n: D(n).scaleb(-places))


class Desk:
    """A test-side saga over one account: every change is an event, applied as it is made."""

    def __init__(self) -> None:
        self.account = Account(account=7)
        self.orders: dict[str, Order] = {}
        self.events: list[te.TradingEvent] = []
        self.last: dict[str, Decimal] = {}
        self.reference: dict[str, Decimal] = {}
        """The price a market order's reservation was made against."""
        self.now = 10**18

    def emit(self, event: te.TradingEvent) -> None:
        self.events.append(event)
        self.account = self.account.apply(event)
        if isinstance(event, te.OrderSubmitted):
            self.orders[event.order_id] = Order.submitted(event)
        elif isinstance(event, te.ORDER_EVENTS):
            order = self.orders[event.order_id].apply(event)
            self.orders[event.order_id] = order
            released = self.account.release(order.order_id, event.ts) if order.is_terminal else None
            if released is not None:
                self.emit(released)

    def tick(self) -> int:
        self.now += 150_000_000
        return self.now

    # -- what a bot, the market and the venue do ------------------------------------------------

    def deposit(self, currency: str, amount: Decimal) -> None:
        self.emit(te.FundsDeposited(account=7, currency=currency, amount=amount, ts=self.tick()))

    def trade(self, instrument: str, price: Decimal) -> None:
        self.last[instrument] = price

    def submit(self, made: OrderRequest) -> None:
        now = self.tick()
        order_id = f"o-{len(self.orders)}"
        last = self.last.get(made.instrument)
        try:
            check(made, self.account, last, now, LIMITS)
        except RiskRefused as refused:
            self.emit(made.submitted(order_id, now))
            self.emit(
                te.OrderDenied(
                    account=7, order_id=order_id, reason_code=refused.code, field=refused.field,
                    message=refused.message, ts=now,
                )
            )  # fmt: skip
            return
        self.emit(made.submitted(order_id, now))
        needed = reservation_for(made, last, LIMITS.price_band_pct, LIMITS.taker_fee)
        self.emit(
            te.FundsReserved(
                account=7, order_id=order_id, currency=needed.currency, amount=needed.amount,
                ts=now,
            )
        )  # fmt: skip
        if last is not None:
            self.reference[order_id] = last
        self.emit(te.OrderAccepted(account=7, order_id=order_id, venue_order_id=order_id, ts=now))

    def fill(self, order: Order, share: Decimal, move: Decimal, maker: bool) -> None:
        """Fill ``share`` of what remains of ``order`` at a price ``move`` (-1..1) of the way
        across what its reservation allows; an ioc order is canceled after, a fok order fills
        whole."""
        now = self.tick()
        if order.type is te.OrderType.STOP_MARKET and order.status is te.OrderStatus.ACCEPTED:
            triggered = te.OrderTriggered(account=7, order_id=order.order_id, ts=now, trade_id=now)
            self.emit(triggered)
        whole = order.time_in_force is te.TimeInForce.FOK or share == 1
        quantity = (
            order.remaining if whole else (order.remaining * share).quantize(STEP, ROUND_DOWN)
        )
        if quantity <= 0:
            return
        price = self.fill_price(order, move)
        with localcontext(EXACT):
            fee = price * quantity * (0 if maker else LIMITS.taker_fee)
        self.emit(
            te.OrderFilled(
                account=7, order_id=order.order_id, fill_id=f"f-{len(self.events)}",
                instrument=order.instrument, side=order.side, price=price, quantity=quantity,
                fee=fee, fee_currency=spec_of(order.instrument).quote,
                liquidity=te.Liquidity.MAKER if maker else te.Liquidity.TAKER, trade_id=now, ts=now,
            )
        )  # fmt: skip
        self.last[order.instrument] = price
        if order.time_in_force is te.TimeInForce.IOC:
            self.end(order.order_id, "ioc")

    def fill_price(self, order: Order, move: Decimal) -> Decimal:
        band = LIMITS.price_band_pct / 100
        base = order.price or order.stop_price or self.reference[order.order_id]
        buy = order.side is te.OrderSide.BUY
        if order.type is te.OrderType.LIMIT:  # at the limit or better
            worst, best = base, base * (1 - band if buy else 1 + band)
        else:  # anywhere in the band the reservation allows for
            worst, best = (
                base * (1 + band if buy else 1 - band),
                base * (1 - band if buy else 1 + band),
            )
        with localcontext(EXACT):
            price = best + (worst - best) * abs(move)
        return price.quantize(STEP, ROUND_FLOOR if buy else ROUND_CEILING)

    def end(self, order_id: str, how: str) -> None:
        order = self.orders[order_id]
        if not order.is_open:
            return
        now = self.tick()
        if how == "expire":
            self.emit(te.OrderExpired(account=7, order_id=order_id, ts=now))
        else:
            self.emit(cancel(order, now, how))

    def amend(self, order: Order, quantity: Decimal | None, price: Decimal | None) -> None:
        """Amend the order's quantity and its limit or stop price when it may be, moving its
        reservation to what the rest needs."""
        stop = order.type is te.OrderType.STOP_MARKET
        try:
            request = AmendRequest(
                account=7, order_id=order.order_id, quantity=quantity,
                price=None if stop else price, stop_price=price if stop else None,
            )  # fmt: skip
            update = amend(order, request, self.tick())
        except OrderInvalid:
            return
        with localcontext(EXACT):
            rest = update.quantity - order.filled_quantity
        as_new = OrderRequest(
            account=7, client_order_id="amend", instrument=order.instrument, side=order.side,
            type=order.type, quantity=rest, price=update.price, stop_price=update.stop_price,
        )  # fmt: skip
        needed = reservation_for(
            as_new, self.reference.get(order.order_id), LIMITS.price_band_pct, LIMITS.taker_fee
        )
        adjust = self.account.adjust(order.order_id, needed, update.ts)
        if isinstance(adjust, te.FundsReserved) and adjust.amount > self.account.available(
            adjust.currency
        ):
            return  # refused: not enough buying power for the larger order
        if adjust is not None:
            self.emit(adjust)
        self.emit(update)


# -- the random sessions --------------------------------------------------------------------


@dataclass(frozen=True)
class Deposit:
    currency: str
    amount: Decimal

    def run(self, desk: Desk) -> None:
        desk.deposit(self.currency, self.amount)


@dataclass(frozen=True)
class Trade:
    instrument: str
    price: Decimal

    def run(self, desk: Desk) -> None:
        desk.trade(self.instrument, self.price)


@dataclass(frozen=True)
class Kill:
    on: bool

    def run(self, desk: Desk) -> None:
        desk.emit(te.KillSwitchSet(account=7, on=self.on, ts=desk.tick()))


@dataclass(frozen=True)
class Submit:
    instrument: str
    side: te.OrderSide
    type: te.OrderType
    quantity: Decimal
    offset: Decimal
    """Percent from the last trade (or from 100) of a limit or stop price."""
    time_in_force: te.TimeInForce

    def run(self, desk: Desk) -> None:
        around = desk.last.get(self.instrument, D(100)) * (1 + self.offset / 100)
        price = around.quantize(D("0.01"))
        desk.submit(
            OrderRequest(
                account=7, client_order_id=f"c-{len(desk.orders)}", instrument=self.instrument,
                side=self.side, type=self.type, quantity=self.quantity,
                price=price if self.type is te.OrderType.LIMIT else None,
                stop_price=price if self.type is te.OrderType.STOP_MARKET else None,
                time_in_force=self.time_in_force,
            )
        )  # fmt: skip


@dataclass(frozen=True)
class OnOrder:
    """Something done to the ``pick``-th open order (modulo their number), if there is one."""

    pick: int

    def run(self, desk: Desk) -> None:
        open_orders = [order for order in desk.orders.values() if order.is_open]
        if open_orders:
            self.to(desk, open_orders[self.pick % len(open_orders)])

    def to(self, desk: Desk, order: Order) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Fill(OnOrder):
    share: Decimal
    move: Decimal
    maker: bool

    def to(self, desk: Desk, order: Order) -> None:
        desk.fill(order, self.share, self.move, self.maker)


@dataclass(frozen=True)
class End(OnOrder):
    how: str

    def to(self, desk: Desk, order: Order) -> None:
        desk.end(order.order_id, self.how)


@dataclass(frozen=True)
class Amend(OnOrder):
    quantity: Decimal | None
    price: Decimal | None
    """Factors of the order's quantity and of its limit or stop price."""

    def to(self, desk: Desk, order: Order) -> None:
        quantity = (
            None if self.quantity is None else (order.quantity * self.quantity).quantize(STEP)
        )
        price = order.price or order.stop_price
        if self.price is not None and price is not None:
            price = (price * self.price).quantize(D("0.01"))
        desk.amend(order, quantity, price if self.price is not None else None)


Op = Deposit | Trade | Kill | Submit | Fill | End | Amend
PICK = st.integers(0, 50)
MOVE = amounts(-1, 1, 2)
SUBMIT = st.builds(
    Submit, st.sampled_from(INSTRUMENTS), st.sampled_from(te.OrderSide),
    st.sampled_from(te.OrderType), amounts(0, 1, 3).filter(bool), amounts(-6, 6, 1),
    st.sampled_from(te.TimeInForce),
)  # fmt: skip
DEPOSIT = st.builds(Deposit, st.sampled_from(CURRENCIES), amounts(1, 20_000, 2))
TRADE = st.builds(Trade, st.sampled_from(INSTRUMENTS), amounts(1, 3_000, 2))
START = st.lists(st.one_of(DEPOSIT, TRADE), min_size=4, max_size=10)
"""A session starts with some money and some trades (an order needs both)."""
FILL = st.builds(Fill, PICK, st.sampled_from([D("0.25"), D("0.5"), D(1)]), MOVE, st.booleans())
OPS: st.SearchStrategy[Op] = st.one_of(
    DEPOSIT, TRADE, SUBMIT, SUBMIT, SUBMIT, FILL, FILL, FILL,
    st.builds(End, PICK, st.sampled_from(["expire", "by the bot"])),
    st.builds(Amend, PICK, st.sampled_from([None, D("0.5"), D(2)]),
              st.sampled_from([None, D("0.98"), D("1.03")])),
    st.builds(Kill, st.sampled_from([True, False, False])),
)  # fmt: skip
"""Orders and fills come three times as often as the rest."""


# -- the properties -------------------------------------------------------------------------


def assert_conserved(desk: Desk) -> None:
    """Cash is deposits plus fill flows less fees; positions are the sum of their fills."""
    cash: defaultdict[str, Decimal] = defaultdict(Decimal)
    held: defaultdict[str, Decimal] = defaultdict(Decimal)
    spent: defaultdict[str, Decimal] = defaultdict(Decimal)
    with localcontext(EXACT):
        for event in desk.events:
            if isinstance(event, te.FundsDeposited):
                cash[event.currency] += event.amount
            elif isinstance(event, te.OrderFilled):
                spec, sign = spec_of(event.instrument), 1 if event.side is te.OrderSide.BUY else -1
                cash[spec.base] += sign * event.quantity
                cash[spec.quote] -= sign * event.quantity * event.price
                cash[event.fee_currency] -= event.fee
                held[event.instrument] += sign * event.quantity
                spent[event.instrument] += sign * event.quantity * event.price
        account = desk.account
        for currency in set(cash) | set(account.cash):
            assert account.balance(currency) == cash[currency], currency
            assert account.balance(currency) >= 0, currency
            assert account.available(currency) >= 0, currency
        for instrument, position in account.positions.items():
            assert position.quantity == held[instrument], instrument
            last = desk.last.get(instrument, D(100))
            pnl = position.realised + unrealised(position, last)
            assert abs(pnl - (held[instrument] * last - spent[instrument])) < D("1E-20")


def assert_nothing_stuck(desk: Desk) -> None:
    account = desk.account
    for order_id in account.reservations:
        assert not desk.orders[order_id].is_terminal, order_id
    sums: defaultdict[str, Decimal] = defaultdict(Decimal)
    for held in account.reservations.values():
        sums[held.currency] += held.amount
    assert dict(sums) == dict(account.reserved)


def assert_folds(desk: Desk) -> None:
    assert fold_account(7, desk.events) == desk.account
    by_order: defaultdict[str, list[te.OrderEvent]] = defaultdict(list)
    for event in desk.events:
        if isinstance(event, te.ORDER_EVENTS):
            by_order[event.order_id].append(event)
    assert {order_id: fold(events) for order_id, events in by_order.items()} == desk.orders


@settings(max_examples=200, deadline=None)
@given(start=START, ops=st.lists(OPS, min_size=10, max_size=40))
def test_money_and_positions_are_conserved_and_nothing_stays_reserved(
    start: list[Op], ops: list[Op]
) -> None:
    desk = Desk()
    for op in [*start, *ops]:
        op.run(desk)
        assert_conserved(desk)
        assert_nothing_stuck(desk)
    label_session(desk)
    assert_folds(desk)
    for order in list(desk.orders.values()):
        desk.end(order.order_id, "end of the session")
    assert all(order.is_terminal for order in desk.orders.values())
    assert (desk.account.reservations, desk.account.reserved) == ({}, {})
    assert_conserved(desk)


@settings(max_examples=50, deadline=None)
@given(ops=st.lists(OPS, min_size=20, max_size=60))
def test_the_saga_never_trips_the_accounts_own_guards(ops: list[Op]) -> None:
    """Risk and reservations keep every fill within what the account holds: the account never
    has to refuse an event (it would raise AccountError) in any session."""
    desk = Desk()
    desk.deposit("USD", D(50_000))
    desk.deposit("BTC", D(2))
    for instrument, price in zip(INSTRUMENTS, (D(30_000), D(2_000), D("0.066")), strict=True):
        desk.trade(instrument, price)
    for op in ops:
        op.run(desk)
        assert_conserved(desk)
        assert_nothing_stuck(desk)
    label_session(desk)


def label_session(desk: Desk) -> None:
    """What happened, for ``--hypothesis-show-statistics``."""
    fills = sum(isinstance(event, te.OrderFilled) for event in desk.events)
    label(f"fills: {min(fills, 5)}{'+' if fills >= 5 else ''}")
    for denied in {e.reason_code for e in desk.events if isinstance(e, te.OrderDenied)}:
        label(f"denied: {denied}")
    for kind in {te.kind_of(e) for e in desk.events}:
        label(f"event: {kind}")


@settings(max_examples=30, deadline=None)
@given(start=START, ops=st.lists(OPS, min_size=10, max_size=30))
def test_an_account_and_its_orders_survive_a_snapshot_exactly(
    start: list[Op], ops: list[Op]
) -> None:
    """The states are plain msgspec structs: a snapshot (MessagePack) reads back equal."""
    desk = Desk()
    for op in [*start, *ops]:
        op.run(desk)
    assert (
        msgspec.msgpack.decode(msgspec.msgpack.encode(desk.account), type=Account) == desk.account
    )
    snapshot = msgspec.msgpack.encode(list(desk.orders.values()))
    assert msgspec.msgpack.decode(snapshot, type=list[Order]) == list(desk.orders.values())

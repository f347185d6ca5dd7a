"""A scripted trading session that takes every saga path, run against a fresh service, and
run again with a crash: after the crash a new service (a new process would build the same)
resumes and the script carries on from the action that was cut off, as a client retries a
command and the tick consumer feeds its uncommitted batch again.

The clock is the script's: each action happens at its own time, the same in every run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from core.ticks import Side, Tick
from core.trading_events import OrderSide, OrderType, TimeInForce
from trading.domain.accounts import Account
from trading.domain.orders import AmendRequest, Order, OrderRequest
from trading.paper.matcher import PaperMatcher
from trading.paper.settings import PaperSettings, QueueModel
from trading.service.book import Book
from trading.service.shell import Fault, TradingService
from trading.store.database import Database

D = Decimal
ACCOUNT = 7
XBT = "KRAKEN:XBTUSDT"
START = 1_767_225_600_000_000_000
SECOND = 1_000_000_000


class CrashError(Exception):
    """The fault hook's stand-in for a process that dies."""


def settings() -> PaperSettings:
    """Fees the reservations allow for (10 bps taker: the risk limits' default), and the
    queue model that fills on the first touch (a restarted venue has no trade history)."""
    return PaperSettings(maker_fee_bps=D(5), taker_fee_bps=D(10), queue=QueueModel(fraction=D(0)))


def no_fault(step: str, order_id: str) -> None:
    return None


@dataclass
class Clock:
    now: int = START

    def __call__(self) -> int:
        return self.now


def tick(trade_id: int, price: str, size: str) -> Tick:
    """A trade; its time is set when the script feeds it (:meth:`Session.act`)."""
    return Tick(XBT, trade_id, D(price), D(size), Side.SELL, 1, 1)


def order(
    client_id: str, side: OrderSide, type_: OrderType, quantity: str, **more: object
) -> OrderRequest:
    return OrderRequest(
        account=ACCOUNT, client_order_id=client_id, instrument=XBT, side=side, type=type_,
        quantity=D(quantity), **more,  # type: ignore[arg-type]
    )  # fmt: skip


BUY, SELL = OrderSide.BUY, OrderSide.SELL
LIMIT, MARKET, STOP = OrderType.LIMIT, OrderType.MARKET, OrderType.STOP_MARKET


@dataclass(frozen=True)
class Deposit:
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class Ticks:
    ticks: list[Tick]


@dataclass(frozen=True)
class Place:
    request: OrderRequest


@dataclass(frozen=True)
class Cancel:
    client_id: str


@dataclass(frozen=True)
class Amend:
    client_id: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class Kill:
    pass


Action = Deposit | Ticks | Place | Cancel | Amend | Kill
SCRIPT: list[Action] = [
    Deposit("USDT", D(100_000)),
    Deposit("XBT", D(2)),
    Ticks([tick(1, "100", "1")]),
    Place(order("a-limit", BUY, LIMIT, "1", price=D(100))),
    Place(order("b-stop", SELL, STOP, "0.5", stop_price=D(96))),
    Place(order("b2-stop", SELL, STOP, "0.2", stop_price=D("96.5"))),
    Place(order("c-ioc", BUY, LIMIT, "1", price=D(99), time_in_force=TimeInForce.IOC)),
    Place(order("d-too-big", BUY, LIMIT, "999", price=D(100))),
    Place(order("d2-too-big", SELL, LIMIT, "999", price=D(100))),
    Ticks([tick(2, "100", "0.4"), tick(3, "99.5", "2")]),
    Place(order("e-market", BUY, MARKET, "0.25")),
    Ticks([tick(4, "96", "1"), tick(5, "95.5", "1")]),
    Place(order("f-sell", SELL, LIMIT, "0.5", price=D(99))),
    Cancel("f-sell"),
    Place(order("g-buy", BUY, LIMIT, "0.3", price=D(97))),
    Amend("g-buy", D("0.5"), D(98)),
    Ticks([tick(6, "97.5", "0.2")]),
    Kill(),
]


@dataclass
class Session:
    database: Database
    fault: Fault
    clock: Clock = field(default_factory=Clock)
    crashes: int = 0
    at: int = START
    """The time of the action running: it numbers the action."""

    def __post_init__(self) -> None:
        self.service = self.fresh(self.fault)

    def fresh(self, fault: Fault = no_fault) -> TradingService:
        """A service as a new process builds it: a new, empty paper venue."""
        return TradingService(
            self.database, PaperMatcher(settings()), clock=self.clock, fault=fault
        )

    async def run(self, start: int = 0) -> Book:
        """Run :data:`SCRIPT` from its action ``start``; the account at the end."""
        for number, action in enumerate(SCRIPT):
            if number < start:
                continue
            self.at = self.clock.now = START + number * SECOND
            while True:
                try:
                    await self.act(action)
                    break
                except CrashError:
                    self.crashes += 1
                    await self.done()
                    self.service = self.fresh()
                    await self.service.resume()
        book = await self.service.book(ACCOUNT)
        await self.done()
        return book

    async def done(self) -> None:
        """Until the service's last acts (its snapshots, taken beside the commits) are over:
        a crashed process does nothing more, and a test that wipes the store after a run must
        not have a snapshot of the wiped events land after it."""
        await self.service._repository.snapshots_taken()

    async def order_id(self, client_id: str) -> str:
        book = await self.service.book(ACCOUNT)
        return book.submissions[client_id].order_id

    async def act(self, action: Action) -> None:
        service, now = self.service, self.clock.now
        match action:
            case Deposit(currency, amount):
                await service.deposit(ACCOUNT, currency, amount)
            case Ticks(ticks):
                await service.on_ticks(
                    msgspec.structs.replace(t, ts_event=now + n, ts_recv=now + n)
                    for n, t in enumerate(ticks, start=1)
                )
            case Place(request):
                await service.place(request)
            case Cancel(client_id):
                order_id = await self.order_id(client_id)
                if (await service.order(ACCOUNT, order_id)).is_open:  # else: done before a crash
                    await service.cancel(ACCOUNT, order_id)
            case Amend(client_id, quantity, price):
                order_id = await self.order_id(client_id)
                await service.amend(
                    AmendRequest(account=ACCOUNT, order_id=order_id, quantity=quantity, price=price)
                )
            case Kill():
                await service.kill_switch(ACCOUNT)


def comparable(book: Book) -> tuple[Account, dict[str, Order]]:
    """The account and its orders by client order id, without what differs between runs
    by design (order ids are random, venue order ids are the venue's counters)."""
    orders = {
        order.client_order_id: msgspec.structs.replace(
            order,
            order_id="",
            venue_order_id=None,
            fill_ids=frozenset(fill.rsplit("-", 1)[1] for fill in order.fill_ids),
        )
        for order in book.orders.values()
    }
    return book.account, orders


def crash(step: str, occurrence: int) -> None:
    raise CrashError(f"crash after {step} #{occurrence}")


def crash_at(
    step: str, occurrence: int, then: Callable[[str, int], None] = crash
) -> Callable[[str, str], None]:
    """A fault hook that crashes (calls ``then``) after the ``occurrence``-th append of
    ``step``, once."""
    seen = 0

    def hook(at: str, order_id: str) -> None:
        nonlocal seen
        if at == step:
            seen += 1
            if seen == occurrence:
                then(step, occurrence)

    return hook

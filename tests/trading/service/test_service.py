"""Every path of the order saga through the service, on real PostgreSQL: each ends with the
account holding no reservation for an ended order, and with what the stored events fold to."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from core.ticks import Side, Tick
from core.trading_events import (
    FundsReleased,
    FundsReserved,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderStatus,
    OrderSubmitted,
    TimeInForce,
)
from tests.trading.service.scenario import (
    ACCOUNT,
    BUY,
    LIMIT,
    MARKET,
    SELL,
    START,
    XBT,
    Clock,
    order,
    settings,
)  # fmt: skip
from trading.domain.orders import AmendRequest, OrderInvalid
from trading.domain.risk import RiskRefused
from trading.paper.matcher import PaperMatcher
from trading.paper.venue import VenueReport
from trading.service.book import Book, aggregate_id, apply
from trading.service.saga import ServiceError
from trading.service.shell import TradingService
from trading.store.aggregates import Aggregate, fold
from trading.store.database import Database
from trading.store.errors import ConcurrencyConflict, StoreUnavailableError
from trading.store.events import EventStore
from trading.store.wire import EVENT_CODEC

D = Decimal
OTHER = 8


def service(database: Database, venue: PaperMatcher | None = None) -> TradingService:
    return TradingService(database, venue or PaperMatcher(settings()), clock=Clock())


def trade(trade_id: int, price: str, size: str = "10") -> Tick:
    ts = START + trade_id
    return Tick(XBT, trade_id, D(price), D(size), Side.BUY, ts, ts)


def stored(database: Database, account: int = ACCOUNT) -> Book:
    """The account folded from its stored events, from the first (no snapshot, no cache)."""
    events = EventStore(database, EVENT_CODEC).read(aggregate_id(account))
    book = fold(apply, Aggregate(aggregate_id(account), 0, None), events).state
    assert book is not None
    return book


async def funded(database: Database, usdt: str = "10000") -> TradingService:
    trading = service(database)
    await trading.deposit(ACCOUNT, "USDT", D(usdt))
    await trading.on_ticks([trade(1, "100", "1")])
    return trading


async def test_an_order_is_reserved_routed_filled_and_its_rest_released(
    database: Database,
) -> None:
    trading = await funded(database)
    placed = (await trading.place(order("a", BUY, LIMIT, "2", price=D(100)))).order
    assert placed.status is OrderStatus.ACCEPTED
    book = await trading.book(ACCOUNT)
    assert book.account.reservations[placed.order_id].amount == D("200.2")  # 2 x 100 x 1.001
    await trading.on_ticks([trade(2, "99", "2")])
    book = await trading.book(ACCOUNT)
    filled = book.orders[placed.order_id]
    assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(2))
    assert book.account.reservations == {}
    assert book.account.balance("USDT") == D(10000) - D(200) - D("0.1")  # at 100, 5 bps maker
    assert book.account.position(XBT).quantity == D(2)
    assert stored(database) == book


async def test_the_fill_that_ends_an_order_and_its_release_are_one_append(
    database: Database,
) -> None:
    steps: list[str] = []
    trading = TradingService(
        database, PaperMatcher(settings()), clock=Clock(), fault=lambda s, _: steps.append(s)
    )
    await trading.deposit(ACCOUNT, "USDT", D(10000))
    await trading.on_ticks([trade(1, "100", "1")])
    placed = (await trading.place(order("a", BUY, LIMIT, "1", price=D(100)))).order
    before = len(EventStore(database, EVENT_CODEC).read(aggregate_id(ACCOUNT)))
    steps.clear()
    await trading.on_ticks([trade(2, "99", "1")])
    new = EventStore(database, EVENT_CODEC).read(aggregate_id(ACCOUNT))[before:]
    assert [type(item.event) for item in new] == [OrderFilled, FundsReleased]
    assert steps == ["filled"]  # no stored state between the order's end and its release
    assert (await trading.book(ACCOUNT)).account.reservations == {}
    assert stored(database).orders[placed.order_id].status is OrderStatus.FILLED


async def test_an_order_stored_ended_but_not_released_is_released_on_resume(
    database: Database,
) -> None:
    trading = await funded(database)
    placed = (await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))).order
    events = EventStore(database, EVENT_CODEC)
    version = len(events.read(aggregate_id(ACCOUNT)))
    canceled = OrderCanceled(account=ACCOUNT, order_id=placed.order_id, reason="old", ts=9)
    events.append(aggregate_id(ACCOUNT), version, [canceled])  # as a stream stored before
    restarted = service(database)
    assert await restarted.resume() == 1
    book = await restarted.book(ACCOUNT)
    assert book.account.reservations == {}
    assert stored(database) == book


async def test_a_risk_refusal_denies_the_order_and_reserves_nothing(database: Database) -> None:
    trading = await funded(database, "100")
    denied = (await trading.place(order("a", BUY, LIMIT, "2", price=D(100)))).order
    assert (denied.status, denied.reason_code) == (OrderStatus.DENIED, "buying-power")
    (why,) = [
        item.event
        for item in EventStore(database, EVENT_CODEC).read(aggregate_id(ACCOUNT))
        if isinstance(item.event, OrderDenied)
    ]
    assert (why.field, why.message) == (
        "quantity",
        "needs 200.200000000000000000 USDT, 100 available",
    )
    assert (await trading.book(ACCOUNT)).account.reservations == {}


async def test_a_venue_reject_releases_the_reservation(database: Database) -> None:
    one_order = dataclasses.replace(settings(), max_open_orders=1)
    trading = service(database, PaperMatcher(one_order))
    await trading.deposit(ACCOUNT, "USDT", D(10_000))
    await trading.on_ticks([trade(1, "100")])
    await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))
    rejected = (await trading.place(order("b", BUY, LIMIT, "1", price=D(98)))).order
    assert (rejected.status, rejected.reason_code) == (OrderStatus.REJECTED, "too-many-orders")
    book = await trading.book(ACCOUNT)
    assert list(book.account.reservations) == [book.submissions["a"].order_id]
    released = EventStore(database, EVENT_CODEC).read(aggregate_id(ACCOUNT))
    assert isinstance(released[-1].event, FundsReleased)
    assert released[-1].event.order_id == rejected.order_id


class SilentVenue(PaperMatcher):
    """A venue that does not answer a submit in time (and was asked to cancel)."""

    def __init__(self) -> None:
        super().__init__(settings())
        self.canceled: list[str] = []

    def submit(
        self, order: OrderSubmitted, ts: int, *, triggered_by: int | None = None
    ) -> list[VenueReport]:
        raise TimeoutError

    def cancel(self, account: int, order_id: str, ts: int) -> list[VenueReport]:
        self.canceled.append(order_id)
        return super().cancel(account, order_id, ts)


async def test_a_venue_timeout_rejects_the_order_cancels_it_there_and_releases(
    database: Database,
) -> None:
    venue = SilentVenue()
    trading = service(database, venue)
    await trading.deposit(ACCOUNT, "USDT", D(10_000))
    await trading.on_ticks([trade(1, "100")])
    timed_out = (await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))).order
    assert (timed_out.status, timed_out.reason_code) == (OrderStatus.REJECTED, "venue-timeout")
    assert venue.canceled == [timed_out.order_id]
    assert (await trading.book(ACCOUNT)).account.reservations == {}


async def test_a_cancel_ends_the_order_and_releases_what_it_holds(database: Database) -> None:
    trading = await funded(database)
    placed = (await trading.place(order("a", BUY, LIMIT, "2", price=D(99)))).order
    await trading.on_ticks([trade(2, "99", "0.5")])
    canceled = await trading.cancel(ACCOUNT, placed.order_id)
    assert (canceled.status, canceled.filled_quantity) == (OrderStatus.CANCELED, D("0.5"))
    book = await trading.book(ACCOUNT)
    assert book.account.reservations == {}
    await trading.on_ticks([trade(3, "98")])  # the venue holds it no longer
    assert (await trading.book(ACCOUNT)).orders[placed.order_id] == canceled
    with pytest.raises(OrderInvalid) as again:
        await trading.cancel(ACCOUNT, placed.order_id)
    assert again.value.code == "not-open"
    with pytest.raises(ServiceError) as unknown:
        await trading.cancel(ACCOUNT, "no-such-order")
    assert unknown.value.code == "unknown-order"


async def test_an_ioc_rest_is_canceled_by_the_venue_and_released(database: Database) -> None:
    trading = await funded(database)
    placed = (
        await trading.place(order("a", BUY, LIMIT, "2", price=D(99), time_in_force=TimeInForce.IOC))
    ).order
    await trading.on_ticks([trade(2, "99", "0.5")])
    ended = (await trading.book(ACCOUNT)).orders[placed.order_id]
    assert (ended.status, ended.filled_quantity) == (OrderStatus.CANCELED, D("0.5"))
    assert (await trading.book(ACCOUNT)).account.reservations == {}


async def test_a_fill_the_account_cannot_pay_ends_the_order_instead(database: Database) -> None:
    """A market buy reserves the last price plus the band; the paper venue fills it at the
    next trade, wherever that is. With no free cash to cover the difference, the saga cancels
    the order (``uncovered-fill``) and releases its reservation: no balance goes below 0."""
    trading = service(database)
    await trading.on_ticks([trade(1, "100")])
    await trading.deposit(ACCOUNT, "USDT", D("105.105"))  # exactly the reservation
    placed = (await trading.place(order("a", BUY, MARKET, "1"))).order
    assert placed.status is OrderStatus.ACCEPTED
    await trading.on_ticks([trade(2, "120")])
    book = await trading.book(ACCOUNT)
    ended = book.orders[placed.order_id]
    assert ended.status is OrderStatus.CANCELED
    assert ended.filled_quantity == 0
    assert book.account.reservations == {}
    assert book.account.balance("USDT") == D("105.105")
    assert stored(database) == book


async def test_an_amend_moves_the_reservation_and_is_refused_beyond_buying_power(
    database: Database,
) -> None:
    trading = await funded(database, "300")
    placed = (await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))).order
    amended = await trading.amend(
        AmendRequest(account=ACCOUNT, order_id=placed.order_id, quantity=D(2), price=D(98))
    )
    assert (amended.quantity, amended.price) == (D(2), D(98))
    held = (await trading.book(ACCOUNT)).account.reservations[placed.order_id]
    assert held.amount == D("196.196")
    with pytest.raises(RiskRefused) as refused:
        await trading.amend(AmendRequest(account=ACCOUNT, order_id=placed.order_id, quantity=D(4)))
    assert refused.value.code == "buying-power"
    after = (await trading.book(ACCOUNT)).orders[placed.order_id]
    assert after == amended  # refused before the venue was asked: nothing moved
    await trading.on_ticks([trade(2, "97", "4")])
    assert (await trading.book(ACCOUNT)).orders[placed.order_id].filled_quantity == D(2)
    events = [item.event for item in EventStore(database, EVENT_CODEC).read(aggregate_id(ACCOUNT))]
    assert sum(isinstance(e, FundsReserved) for e in events) == 2


async def test_the_same_client_order_id_makes_one_order_and_other_content_is_refused(
    database: Database,
) -> None:
    trading = await funded(database)
    request = order("same", BUY, LIMIT, "1", price=D(99))
    first, created = await trading.place(request)
    again, repeated = await trading.place(request)
    assert (again, created, repeated) == (first, True, False)
    book = await trading.book(ACCOUNT)
    assert list(book.submissions) == ["same"]
    assert len(book.orders) == 1
    for other in (
        order("same", BUY, LIMIT, "2", price=D(99)),
        order("same", BUY, LIMIT, "1", price=D(98)),
        order("same", SELL, LIMIT, "1", price=D(99)),
        order("same", BUY, LIMIT, "1", price=D(99), time_in_force=TimeInForce.IOC),
    ):
        with pytest.raises(ServiceError) as reused:
            await trading.place(other)
        assert reused.value.code == "client-order-id-reused"
    amended = await trading.amend(
        AmendRequest(account=ACCOUNT, order_id=first.order_id, price=D(98))
    )
    assert await trading.place(request) == (amended, False)  # the request as first sent: that order
    assert len((await trading.book(ACCOUNT)).orders) == 1


async def test_the_kill_switch_cancels_every_open_order_releases_and_denies_new_ones(
    database: Database,
) -> None:
    trading = await funded(database)
    await trading.deposit(ACCOUNT, "XBT", D(1))
    await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))
    await trading.place(order("b", SELL, LIMIT, "1", price=D(101)))
    account = await trading.kill_switch(ACCOUNT)
    assert account.kill_switch
    assert account.reservations == {}
    book = await trading.book(ACCOUNT)
    assert {o.status for o in book.orders.values()} == {OrderStatus.CANCELED}
    await trading.on_ticks([trade(2, "98"), trade(3, "102")])  # the venue dropped them
    assert {o.filled_quantity for o in (await trading.book(ACCOUNT)).orders.values()} == {0}
    denied = (await trading.place(order("c", BUY, LIMIT, "1", price=D(99)))).order
    assert denied.reason_code == "kill-switch"
    await trading.kill_switch(ACCOUNT, on=False)
    assert (await trading.place(order("d", BUY, LIMIT, "1", price=D(99)))).order.is_open


async def test_accounts_are_isolated(database: Database) -> None:
    trading = await funded(database)
    await trading.deposit(OTHER, "USDT", D(50))
    mine = (await trading.place(order("x", BUY, LIMIT, "1", price=D(99)))).order
    theirs = (
        await trading.place(
            msgspec.structs.replace(order("x", BUY, LIMIT, "0.1", price=D(99)), account=OTHER)
        )
    ).order  # the same client order id in another account: another order
    assert theirs.order_id != mine.order_id
    with pytest.raises(ServiceError) as foreign:
        await trading.cancel(OTHER, mine.order_id)
    assert foreign.value.code == "unknown-order"
    await trading.on_ticks([trade(2, "98", "5")])
    me, other = await trading.book(ACCOUNT), await trading.book(OTHER)
    assert list(me.orders) == [mine.order_id]
    assert list(other.orders) == [theirs.order_id]
    assert other.account.balance("USDT") == D(50) - D("9.9") - D("0.00495")
    assert other.account.position(XBT).quantity == D("0.1")
    assert me.account.position(XBT).quantity == D(1)
    assert stored(database, OTHER) == other


async def test_one_accounts_commands_are_serialised(database: Database) -> None:
    trading = await funded(database)
    same = order("same", BUY, LIMIT, "0.1", price=D(99))
    many = [order(f"o-{n}", BUY, LIMIT, "0.1", price=D(99)) for n in range(10)]
    placed = await asyncio.gather(*(trading.place(r) for r in [same, *many, same, same]))
    assert len({o.order_id for o, _ in placed}) == 11  # the three of "same" are one order
    assert [new for _, new in placed] == [True] * 11 + [False, False]  # one of "same" is new
    book = await trading.book(ACCOUNT)
    assert len(book.orders) == 11
    assert book.account.reserved["USDT"] == 11 * D("9.9099")
    assert stored(database) == book


async def test_a_write_from_another_instance_is_a_conflict_then_reloaded(
    database: Database,
) -> None:
    mine, other = await funded(database), service(database)
    await other.deposit(ACCOUNT, "USDT", D(5))  # the account moved behind my back
    with pytest.raises(ConcurrencyConflict) as conflict:
        await mine.deposit(ACCOUNT, "USDT", D(1))
    assert conflict.value.code == "concurrency-conflict"
    account = await mine.deposit(ACCOUNT, "USDT", D(1))  # reloaded: it sees the other's
    assert account.balance("USDT") == D(10_006)


async def test_a_fill_beyond_its_reservation_is_paid_from_free_cash(database: Database) -> None:
    trading = service(database)
    await trading.on_ticks([trade(1, "100")])
    await trading.deposit(ACCOUNT, "USDT", D(200))
    placed = (await trading.place(order("a", BUY, MARKET, "1"))).order  # reserves 105.105
    await trading.on_ticks([trade(2, "120")])
    book = await trading.book(ACCOUNT)
    filled = book.orders[placed.order_id]
    assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(1))
    assert book.account.balance("USDT") == D(200) - D(120) - D("0.12")  # 10 bps taker
    assert book.account.reservations == {}
    assert stored(database) == book


@contextlib.contextmanager
def store_down(trading: TradingService) -> Iterator[None]:
    """Every append of ``trading`` fails as in a database outage, while in the block."""

    def down(*args: object) -> object:
        raise StoreUnavailableError("the database is down")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trading._repository, "save", down)
        yield


async def test_a_store_failure_after_the_venue_acted_stops_the_service_until_a_restart(
    database: Database,
) -> None:
    """The venue filled, the store could not take it: this service's venue is ahead of the
    store, so it refuses everything (``restart-required``); a new one resumes from the store
    and the trade, fed again, fills the order once."""
    trading = await funded(database)
    placed = (await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))).order
    with store_down(trading), pytest.raises(StoreUnavailableError):
        await trading.on_ticks([trade(2, "98")])
    for refused in (trading.deposit(ACCOUNT, "USDT", D(1)), trading.on_ticks([trade(3, "98")])):
        with pytest.raises(ServiceError) as stopped:
            await refused
        assert stopped.value.code == "restart-required"
    restarted = service(database)
    await restarted.resume()
    await restarted.on_ticks([trade(2, "98")])  # the consumer feeds the batch again
    filled = (await restarted.book(ACCOUNT)).orders[placed.order_id]
    assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(1))


async def test_a_load_that_fails_after_the_venue_filled_stops_the_service_until_a_restart(
    database: Database,
) -> None:
    """The account is not cached when the trade comes (another command's failed append
    dropped it): the venue has filled, the load fails, so the service is unsound (it says so
    once, with the reason) and refuses everything; a new one fills the order once."""
    told: list[str] = []
    trading = TradingService(
        database, PaperMatcher(settings()), clock=Clock(), on_unsound=told.append
    )
    await trading.deposit(ACCOUNT, "USDT", D(10_000))
    await trading.on_ticks([trade(1, "100", "1")])
    placed = (await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))).order
    trading._aggregates.clear()  # as after a failed append of the account

    def down(*args: object) -> object:
        raise StoreUnavailableError("the database is down")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trading._repository, "load", down)
        with pytest.raises(StoreUnavailableError):
            await trading.on_ticks([trade(2, "98")])
    assert trading.unsound is not None
    assert "failed settle" in trading.unsound
    assert told == [trading.unsound]
    with pytest.raises(ServiceError) as stopped:
        await trading.on_ticks([trade(3, "98")])
    assert stopped.value.code == "restart-required"
    assert told == [trading.unsound]  # told once
    restarted = service(database)
    await restarted.resume()
    await restarted.on_ticks([trade(2, "98")])
    filled = (await restarted.book(ACCOUNT)).orders[placed.order_id]
    assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(1))
    assert stored(database).orders[placed.order_id] == filled


async def test_a_store_failure_before_the_venue_acted_leaves_the_service_sound(
    database: Database,
) -> None:
    trading = await funded(database)
    with store_down(trading), pytest.raises(StoreUnavailableError):
        await trading.deposit(ACCOUNT, "USDT", D(1))
    assert (await trading.deposit(ACCOUNT, "USDT", D(1))).balance("USDT") == D(10_001)


async def test_a_place_the_store_did_not_take_is_taken_back_from_the_venue(
    database: Database,
) -> None:
    ids = iter(["o-lost", "o-lost", "o-next"])  # the order id the venue saw comes again
    trading = TradingService(
        database, PaperMatcher(settings()), clock=Clock(), new_id=lambda: next(ids)
    )
    await trading.deposit(ACCOUNT, "USDT", D(10_000))
    await trading.on_ticks([trade(1, "100", "1")])
    with store_down(trading), pytest.raises(StoreUnavailableError):
        await trading.place(order("lost", BUY, LIMIT, "1", price=D(99)))
    book = await trading.book(ACCOUNT)
    assert (book.orders, book.account.balance("USDT")) == ({}, D(10_000))
    placed, new = await trading.place(order("lost", BUY, LIMIT, "1", price=D(99)))
    assert (placed.order_id, placed.status, new) == ("o-lost", OrderStatus.ACCEPTED, True)
    await trading.on_ticks([trade(2, "98", "5")])
    filled = (await trading.book(ACCOUNT)).orders["o-lost"]
    assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(1))  # once


SEVERAL = (ACCOUNT, OTHER, OTHER + 1)


async def resting_in_several_accounts(database: Database) -> tuple[TradingService, list[str]]:
    """A service where each account of :data:`SEVERAL` has a buy of 1 resting at 99; their
    order ids."""
    trading = await funded(database)
    for account in SEVERAL[1:]:
        await trading.deposit(account, "USDT", D(1000))
    placed = []
    for account in SEVERAL:
        request = order(f"g-{account}", BUY, LIMIT, "1", price=D(99))
        placed.append(
            (await trading.place(msgspec.structs.replace(request, account=account))).order.order_id
        )
    return trading, placed


async def test_one_trades_fills_of_several_accounts_share_a_group_commit(
    database: Database,
) -> None:
    """Settled together: each account's fill (and the release riding on it) in fewer commits
    than accounts, and each account as its stored events fold."""
    trading, placed = await resting_in_several_accounts(database)
    groups: list[int] = []
    save_many = trading._repository.sync.save_many

    def counted(saves: list[Any], **options: Any) -> Any:
        groups.append(len(saves))
        return save_many(saves, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trading._repository.sync, "save_many", counted)
        await trading.on_ticks([trade(2, "98", "5")])
    assert sum(groups) == len(SEVERAL)
    assert len(groups) < len(SEVERAL)  # one after another, each would be a commit of its own
    for account, order_id in zip(SEVERAL, placed, strict=True):
        book = await trading.book(account)
        filled = book.orders[order_id]
        assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(1))
        assert book.account.reservations == {}
        assert stored(database, account) == book


async def test_a_store_failure_settling_several_accounts_stops_the_service_until_a_restart(
    database: Database,
) -> None:
    """Every account's settling ends before the error is raised; the service is unsound, and
    a new one, fed the trade again, fills each account's order once."""
    trading, placed = await resting_in_several_accounts(database)
    with store_down(trading), pytest.raises(StoreUnavailableError):
        await trading.on_ticks([trade(2, "98", "5")])
    assert trading.unsound is not None
    restarted = service(database)
    await restarted.resume()
    await restarted.on_ticks([trade(2, "98", "5")])
    for account, order_id in zip(SEVERAL, placed, strict=True):
        filled = (await restarted.book(account)).orders[order_id]
        assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(1))
        assert stored(database, account).orders[order_id] == filled

"""The trading service's async shell: it loads the account aggregate, asks the saga
(:mod:`trading.service.saga`) what to do, appends what it decides, talks to the venue, and
calls the fault hook after every append. It decides nothing itself.

One account's commands are serialised by an ``asyncio.Lock`` per account in this process; the
append's optimistic concurrency check (the aggregate's version) refuses a write from anywhere
else (another instance that should not own the account) with ``concurrency-conflict``, and
the next command reloads the account. The events reach ``trading.events`` through the
outbox (:class:`trading.store.outbox.OutboxPublisher`), never from here.

A service may own one partition of the accounts (``partition``, ``docs/trading.md``,
"Partitions"): it resumes only those, and refuses a command of any other account with
``wrong-partition`` before it loads anything.

Traces (:mod:`telemetry.tracing`): in a sampled span (an order's POST), each append is a
``trading.<step>`` span, and the order remembers the span's context, so that the fills and
ends a trade brings later are ``trading.fill`` (``trading.settle``) spans of the same trace,
linked to the tick's. Unsampled orders remember nothing and make no span.

Metrics: each append that ends a saga counts its outcome in ``mdp_trading_saga_outcomes_total``
(:func:`trading.service.saga.ended`); loading, rebuilding and resuming append nothing that
ends a saga already ended, so a restart counts no saga twice.

Each command takes an optional ``tracking``: a reader's position (a consumer of
``trading.commands`` names the record it applies) stored in the transaction of the command's
first append, so a command stored once is never stored again after a crash (the append
refuses a position that does not move forward).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Final, NamedTuple, Protocol

from eventsourcing.persistence import Tracking

from core.partitions import EVERY_ACCOUNT, Partition
from core.ticks import Tick
from core.trading_events import (
    KillSwitchSet,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderTriggered,
    TradingEvent,
)
from telemetry.metrics import SAGA_OUTCOMES
from trading.domain.accounts import Account
from trading.domain.orders import AmendRequest, Order, OrderRequest, cancel
from trading.domain.risk import DEFAULT_LIMITS, RiskLimits, kill
from trading.paper.venue import AmendRefused, CancelRefused, Venue, VenueReport
from trading.service import saga, venue_state
from trading.service.book import PREFIX, STATE_CODEC, Book, aggregate_id, apply
from trading.service.saga import ServiceError, Step
from trading.service.traces import OrderTraces, step_span
from trading.store.aggregates import Aggregate
from trading.store.aio import AsyncRepository
from trading.store.database import Database
from trading.store.errors import StoreError
from trading.store.events import EventStore
from trading.store.log import NotificationLog
from trading.store.repository import Repository
from trading.store.wire import EVENT_CODEC

Fault = Callable[[str, str], None]
"""Called after every append with the step (``submitted``, ``placed``, ``routed``, ``filled``,
``triggered``, ``ended``, ``released``, ``amended``, ``deposited``, ``killed``) and the order
id (empty for an account's own step): tests crash the service there."""

STEPS: Final = ("submitted", "placed", "filled", "triggered", "ended")
"""The saga's steps, each one append. ``placed`` is an order submitted, reserved and routed to
the in-process venue in one append (the venue is rebuilt from the store after a crash, so the
order need not be stored before it is routed; an append that fails takes it back from the
venue); ``submitted`` alone is a denial. The step that ends an order carries its release.
``routed`` and ``released`` on their own are only taken on resume, for a stream stored before
those steps were merged."""

AFTER_THE_VENUE: Final = frozenset({"routed", "filled", "triggered", "ended", "amended", "killed"})
"""Steps that store what the venue already did: when their append fails, the venue holds what
the store does not, and only a new service (a new venue, rebuilt by :meth:`resume`) is sound."""

RESTART_REQUIRED: Final = "restart-required"
WRONG_PARTITION: Final = "wrong-partition"


_STEP_OF: Final[dict[type, str]] = {OrderFilled: "filled", OrderTriggered: "triggered"}


class TickVenue(Venue, Protocol):
    """A venue fed with trades (the paper venue); after a restart it is handed back each
    stop a trade had triggered, with that trade's id (``triggered_by``)."""

    def submit(
        self, order: OrderSubmitted, ts: int, *, triggered_by: int | None = None
    ) -> list[VenueReport]: ...

    def on_tick(self, tick: Tick) -> list[VenueReport]: ...


class Placed(NamedTuple):
    """What :meth:`TradingService.place` did: the order as it stands, and whether this
    request created it (False: an earlier request with its client order id did)."""

    order: Order
    new: bool


def _no_fault(step: str, order_id: str) -> None:
    return None


def _new_id() -> str:
    return uuid.uuid4().hex


class TradingService:
    def __init__(
        self,
        database: Database,
        venue: TickVenue,
        *,
        limits: RiskLimits = DEFAULT_LIMITS,
        clock: Callable[[], int] = time.time_ns,
        new_id: Callable[[], str] = _new_id,
        fault: Fault = _no_fault,
        partition: Partition = EVERY_ACCOUNT,
        on_unsound: Callable[[str], None] = lambda _: None,
    ) -> None:
        """``on_unsound`` is told once, with the reason, when the service must restart
        (:attr:`unsound`)."""
        self.partition = partition
        """The accounts this service owns (``0/1``: every one)."""
        self._repository = AsyncRepository(
            Repository(database, EventStore(database, EVENT_CODEC), apply, STATE_CODEC)
        )
        self._log = NotificationLog(database)
        self._venue = venue
        self._limits = limits
        self._clock = clock
        self._new_id = new_id
        self._fault = fault
        self._locks: dict[int, asyncio.Lock] = {}
        self._aggregates: dict[int, Aggregate[Book]] = {}
        self._last_price: dict[str, Decimal] = {}
        self._unsound: str | None = None
        self._on_unsound = on_unsound
        self._traces = OrderTraces()
        self._last_submitted = 0
        """The latest ``ts`` of an order submitted to this service's venue, stored or not."""

    @property
    def unsound(self) -> str | None:
        """Why the service refuses everything until a restart (``restart-required``: its
        venue holds what the store does not), ``None`` while it is sound."""
        return self._unsound

    # -- commands --------------------------------------------------------------------------------

    async def place(self, request: OrderRequest, *, tracking: Tracking | None = None) -> Placed:
        """Run ``request``'s saga as far as it goes now (denied, rejected, or at the venue);
        the same client order id again returns that order, not new (``client-order-id-reused``
        when its content differs)."""
        async with self._lock(request.account):
            aggregate = await self._load(request.account)
            book = self._book(aggregate, request.account)
            found = saga.existing(book, request)
            if found is not None:
                order_id = found.order_id
            else:
                order_id = self._new_id()
                self._traces.remember(order_id)
                last = self._last_price.get(request.instrument)
                now = self._submission_time()
                events = saga.submit(book, request, order_id, now, last, self._limits)
                step = "submitted"
                if not any(isinstance(event, OrderDenied) for event in events):
                    events = [*events, *self._route(saga.after(book, events), order_id)]
                    step = "placed"  # submitted and routed: one append for both
                try:
                    aggregate = await self._append(aggregate, events, step, order_id, tracking)
                except StoreError:
                    if step == "placed":  # the venue forgets what the store did not take
                        self._venue.cancel(request.account, order_id, self._clock())
                    raise
            aggregate = await self._drive(aggregate, order_id)
            return Placed(self._book(aggregate, request.account).orders[order_id], found is None)

    def _submission_time(self) -> int:
        """The clock, but after every earlier submission: the orders' submission times are
        the order in which the venue took them, and :meth:`resume` rebuilds it in that order
        (the same time twice, or a clock stepped back, would leave it to the account ids)."""
        self._last_submitted = max(self._clock(), self._last_submitted + 1)
        return self._last_submitted

    async def cancel(
        self, account: int, order_id: str, *, tracking: Tracking | None = None
    ) -> Order:
        """Cancel the order at the venue, store it, release what it holds."""
        async with self._lock(account):
            aggregate = await self._load(account)
            now = self._clock()
            cancel(
                saga.known_order(self._book(aggregate, account), order_id), now
            )  # open, else refused
            reports = self._venue.cancel(account, order_id, now)
            aggregate = await self._reported(aggregate, reports, tracking)
            aggregate = await self._drive(aggregate, order_id)
            return self._book(aggregate, account).orders[order_id]

    async def amend(self, request: AmendRequest, *, tracking: Tracking | None = None) -> Order:
        """Change the order at the venue, then store the change with its reservation's."""
        async with self._lock(request.account):
            aggregate = await self._load(request.account)
            book = self._book(aggregate, request.account)
            order = saga.known_order(book, request.order_id)
            last = self._last_price.get(order.instrument)
            now = self._clock()
            events = saga.amended(book, request, now, last, self._limits)
            reports = self._venue.amend(
                request.account,
                request.order_id,
                now,
                quantity=request.quantity,
                price=request.price,
                stop_price=request.stop_price,
            )
            _raise_refusal(reports)
            aggregate = await self._append(aggregate, events, "amended", request.order_id, tracking)
            return self._book(aggregate, request.account).orders[request.order_id]

    async def deposit(
        self, account: int, currency: str, amount: Decimal, *, tracking: Tracking | None = None
    ) -> Account:
        """Paper funding: ``amount`` of ``currency`` comes into the account."""
        async with self._lock(account):
            aggregate = await self._load(account)
            events = saga.deposited(account, currency, amount, self._clock())
            aggregate = await self._append(aggregate, events, "deposited", "", tracking)
            return self._book(aggregate, account).account

    async def kill_switch(
        self, account: int, *, on: bool = True, tracking: Tracking | None = None
    ) -> Account:
        """On: cancel every open order (at the venue too), release what they hold, and deny
        new orders; off: allow them again."""
        async with self._lock(account):
            aggregate = await self._load(account)
            book = self._book(aggregate, account)
            now = self._clock()
            events: list[TradingEvent]
            if on:
                events = kill(book.account, book.orders.values(), now)
                for event in events:
                    if isinstance(event, OrderCanceled):
                        self._venue.cancel(account, event.order_id, now)
            else:
                events = [KillSwitchSet(account=account, on=False, ts=now)]
            aggregate = await self._append(aggregate, events, "killed", "", tracking)
            return self._book(aggregate, account).account

    async def order(self, account: int, order_id: str) -> Order:
        """One order of the account (``unknown-order`` when it has no such order)."""
        async with self._lock(account):
            return saga.known_order(self._book(await self._load(account), account), order_id)

    async def book(self, account: int) -> Book:
        """The account with its orders, as stored."""
        async with self._lock(account):
            return self._book(await self._load(account), account)

    def last_prices(self) -> dict[str, Decimal]:
        """The last trade price of each instrument the venue was fed (what positions are
        marked to)."""
        return dict(self._last_price)

    # -- trades ----------------------------------------------------------------------------------

    async def on_ticks(self, ticks: Iterable[Tick]) -> None:
        """Feed the venue each trade and settle what it reports, each report one step of its
        order's saga. The reports of one trade for several accounts are settled concurrently,
        each account's in the venue's order (:func:`~trading.service.saga.per_account`), so
        that their appends share a group commit; the next trade waits for all of them. The
        venue's book after a trade does not depend on how they interleave: its fills and
        triggers are done in ``on_tick``, and the one venue call of a settling, an uncovered
        fill's cancel, removes only that order. After a crash the same batch may come again
        (:meth:`resume`)."""
        for tick in ticks:
            self._check_sound()
            self._last_price[tick.instrument] = tick.price
            accounts = saga.per_account(self._venue.on_tick(tick))
            if len(accounts) == 1:
                await self._settle_each(accounts[0])
            elif accounts:
                done = await asyncio.gather(
                    *map(self._settle_each, accounts), return_exceptions=True
                )
                for outcome in done:  # every account's settling ran to its end: the first error
                    if isinstance(outcome, BaseException):
                        raise outcome

    async def _settle_each(self, reports: Sequence[VenueReport]) -> None:
        for report in reports:
            await self._settle(report)

    # -- after a restart -------------------------------------------------------------------------

    async def resume(self) -> int:
        """Rebuild the venue's working orders from the stored events, then take every open
        saga to its end or to the venue (no double fill: a rebuilt order takes part only in
        trades after its last stored event; no stuck reservation: every ended order releases).
        Returns the sagas resumed."""
        accounts = await asyncio.to_thread(self._accounts)
        books: dict[int, Book] = {}
        for account in accounts:
            async with self._lock(account):
                books[account] = self._book(await self._load(account), account)
        stored = (order.ts_submitted for book in books.values() for order in book.orders.values())
        self._last_submitted = max(stored, default=self._last_submitted)
        for order, ts, trigger in venue_state.working_orders(books.values()):
            _raise_refusal(self._venue.submit(order, ts, triggered_by=trigger))
        resumed = 0
        for account, book in books.items():
            for order_id in saga.open_sagas(book):
                async with self._lock(account):
                    await self._drive(await self._load(account), order_id)
                resumed += 1
        return resumed

    def _accounts(self) -> list[int]:
        """Every account of this partition with a stream."""
        accounts = (int(id_.removeprefix(PREFIX)) for id_ in self._log.aggregate_ids(PREFIX))
        return sorted(account for account in accounts if self.partition.owns(account))

    # -- the saga's steps ------------------------------------------------------------------------

    async def _drive(self, aggregate: Aggregate[Book], order_id: str) -> Aggregate[Book]:
        """Take the saga of ``order_id`` as far as it goes without a trade."""
        while True:
            book = aggregate.state
            assert book is not None  # the saga's order is in it
            step = saga.next_step(book, order_id)
            if step is Step.ROUTE:
                events = self._route(book, order_id)
                aggregate = await self._append(aggregate, events, "routed", order_id)
            elif step is Step.RELEASE:
                events = saga.release(book, order_id, self._clock())
                aggregate = await self._append(aggregate, events, "released", order_id)
            else:
                return aggregate

    def _route(self, book: Book, order_id: str) -> list[TradingEvent]:
        order = book.orders[order_id]
        now = self._clock()
        try:
            reports = self._venue.submit(saga.submission(order), now)
        except TimeoutError:
            self._venue.cancel(order.account, order_id, now)  # in case it holds it after all
            return saga.timed_out(book, order_id, now)
        return [r for r in reports if isinstance(r, OrderAccepted | OrderRejected)]

    async def _settle(self, report: VenueReport) -> None:
        if not isinstance(report, OrderFilled | OrderTriggered | OrderCanceled):
            return
        with self._traces.settling(report):
            try:
                async with self._lock(report.account):
                    aggregate = await self._load(report.account)
                    aggregate = await self._reported(aggregate, [report])
                    aggregate = await self._drive(aggregate, report.order_id)
            except StoreError as exc:  # a load too: the venue has acted on the trade already
                self._aggregates.pop(report.account, None)
                self._mark_unsound(
                    f"the venue is ahead of the store after a failed settle of order"
                    f" {report.order_id} ({exc})"
                )
                raise
            order = self._book(aggregate, report.account).orders.get(report.order_id)
            if order is None or order.is_terminal:
                self._traces.forget(report.order_id)

    async def _reported(
        self,
        aggregate: Aggregate[Book],
        reports: Sequence[VenueReport],
        tracking: Tracking | None = None,
    ) -> Aggregate[Book]:
        """Store what the venue reported; ``tracking`` goes with the first append."""
        _raise_refusal(reports)
        for report in reports:
            if not isinstance(report, OrderFilled | OrderTriggered | OrderCanceled):
                continue
            book = self._book(aggregate, report.account)
            events = saga.settled(book, report)
            if not events:
                continue
            if isinstance(report, OrderFilled) and isinstance(events[0], OrderCanceled):
                self._venue.cancel(report.account, report.order_id, report.ts)  # uncovered
            step = {OrderFilled: "filled", OrderTriggered: "triggered"}.get(
                type(events[0]), "ended"
            )
            aggregate = await self._append(aggregate, events, step, report.order_id, tracking)
            tracking = None
        return aggregate

    # -- storage ---------------------------------------------------------------------------------

    def _lock(self, account: int) -> asyncio.Lock:
        """The account's lock; every command and report takes it, so a service whose venue
        went out of step with the store refuses them all here, and so does a service that
        does not own the account."""
        self._check_sound()
        if not self.partition.owns(account):
            owner = self.partition.owner(account)
            raise ServiceError(
                WRONG_PARTITION, f"account {account} is partition {owner}'s, not {self.partition}'s"
            )
        return self._locks.setdefault(account, asyncio.Lock())

    def _mark_unsound(self, reason: str) -> None:
        if self._unsound is None:
            self._unsound = reason
            self._on_unsound(reason)

    def _check_sound(self) -> None:
        if self._unsound is not None:
            raise ServiceError(RESTART_REQUIRED, self._unsound)

    def _book(self, aggregate: Aggregate[Book], account: int) -> Book:
        return aggregate.state or Book(account=Account(account=account))

    async def _load(self, account: int) -> Aggregate[Book]:
        cached = self._aggregates.get(account)
        if cached is None:
            cached = await self._repository.load(aggregate_id(account))
            self._aggregates[account] = cached
        return cached

    async def _append(
        self,
        aggregate: Aggregate[Book],
        events: Sequence[TradingEvent],
        step: str,
        order_id: str,
        tracking: Tracking | None = None,
    ) -> Aggregate[Book]:
        if not events:
            return aggregate
        account = events[0].account
        before = self._book(aggregate, account)
        if order_id:
            events = saga.with_release(before, order_id, events, self._clock())
        try:
            with step_span(step, order_id):
                saved = await self._repository.save(aggregate, events, tracking)
        except StoreError as exc:
            self._aggregates.pop(account, None)  # another writer: the next command reloads
            if step in AFTER_THE_VENUE:  # a conflict too: the venue acted, the store did not
                self._mark_unsound(f"the venue is ahead of the store after a failed {step} ({exc})")
            raise
        self._aggregates[account] = saved
        for outcome in saga.ended(before, self._book(saved, account), events):
            SAGA_OUTCOMES.labels(outcome).inc()  # once: a saga ends in one stored append
        self._fault(step, order_id)
        return saved


def _raise_refusal(reports: Sequence[VenueReport]) -> None:
    for report in reports:
        if isinstance(report, CancelRefused | AmendRefused):
            raise ServiceError(report.code, report.message)

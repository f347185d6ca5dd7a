"""Trading sessions for the read-model tests: the events of round 1's random sessions
(``tests/trading/test_properties.py``: the domain's own functions, run the way the saga runs
them), stored in the event store, and what the read models must show for them: the domain's
fold of the events."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from core import trading_events as te
from core.positions import Position, unrealised
from tests.trading.test_properties import Desk, Op
from trading.domain.accounts import fold_account
from trading.domain.orders import Order, fold
from trading.readmodels.projection import Balance
from trading.readmodels.queries import MAX_LIMIT, TradingQueries
from trading.store.events import EventStore


def session(account: int, ops: Sequence[Op]) -> tuple[list[te.TradingEvent], dict[str, Decimal]]:
    """The events of a desk session of ``ops``, as account ``account``'s, and the last
    trade price of each instrument at its end."""
    desk = Desk()
    for op in ops:
        op.run(desk)
    events = [msgspec.structs.replace(event, account=account) for event in desk.events]
    return events, desk.last


def aggregate_of(event: te.TradingEvent) -> str:
    if isinstance(event, te.ORDER_EVENTS):
        return f"order:{event.account}:{event.order_id}"
    return f"account:{event.account}"


class Log:
    """Appends events to the store one at a time, each to its aggregate, in the order given
    (so the log holds them in that order)."""

    def __init__(self, store: EventStore[te.TradingEvent]) -> None:
        self.store = store
        self.versions: defaultdict[str, int] = defaultdict(int)

    def append(self, events: Sequence[te.TradingEvent]) -> None:
        for event in events:
            aggregate = aggregate_of(event)
            self.store.append(aggregate, self.versions[aggregate], [event])
            self.versions[aggregate] += 1


@dataclass(frozen=True)
class Views:
    """What an account's read models show, as the domain's types."""

    orders: list[Order]
    """In the order they were submitted."""
    open_orders: list[str]
    fills: list[te.OrderFilled]
    positions: dict[str, Position]
    unrealised: dict[str, Decimal | None]
    balances: dict[str, Balance]
    available: dict[str, Decimal]


def expected(account: int, events: Sequence[te.TradingEvent], last: dict[str, Decimal]) -> Views:
    """The fold of ``events`` by the domain, from scratch."""
    state = fold_account(account, events)
    by_order: dict[str, list[te.OrderEvent]] = {}
    for event in events:
        if isinstance(event, te.ORDER_EVENTS):
            by_order.setdefault(event.order_id, []).append(event)
    orders = [fold(order_events) for order_events in by_order.values()]
    balances = {
        currency: Balance(
            currency=currency,
            cash=cash,
            reserved=state.reserved.get(currency, Decimal(0)),
            fees=state.fees.get(currency, Decimal(0)),
        )
        for currency, cash in state.cash.items()
    }
    return Views(
        orders=orders,
        open_orders=[order.order_id for order in orders if order.is_open],
        fills=[event for event in events if isinstance(event, te.OrderFilled)],
        positions=dict(state.positions),
        unrealised={
            name: unrealised(position, last[name]) if name in last else None
            for name, position in state.positions.items()
        },
        balances=balances,
        available={currency: state.available(currency) for currency in balances},
    )


async def read(queries: TradingQueries, account: int, last: dict[str, Decimal]) -> Views:
    """What the queries answer for ``account``."""
    orders = await queries.orders(account, limit=MAX_LIMIT)
    open_orders = await queries.orders(account, open_only=True, limit=MAX_LIMIT)
    positions = await queries.positions(account, last)
    balances = await queries.balances(account)
    assert [view.seq for view in orders] == list(range(1, len(orders) + 1))
    for view in orders:
        assert await queries.order(account, view.order.order_id) == view
    return Views(
        orders=[view.order for view in orders],
        open_orders=[view.order.order_id for view in open_orders],
        fills=[view.fill for view in await queries.fills(account, limit=MAX_LIMIT)],
        positions={view.position.instrument: view.position for view in positions},
        unrealised={view.position.instrument: view.unrealised for view in positions},
        balances={view.balance.currency: view.balance for view in balances},
        available={view.balance.currency: view.available for view in balances},
    )


def read_now(url: str, schema: str, account: int, last: dict[str, Decimal]) -> Views:
    """:func:`read`, from synchronous code (a Hypothesis example)."""

    async def reading() -> Views:
        async with TradingQueries.open(url, schema) as queries:
            return await read(queries, account, last)

    return asyncio.run(reading())

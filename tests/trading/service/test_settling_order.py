"""Stops of several accounts triggered by one trade: the venue ends with the same queue
whether their reports are settled together or one after another, and a service resumed after
a crash at any of their appends rebuilds that queue (the next trade, too small for all of
them, fills them in the same order)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ticks import Side, Tick
from tests.trading.service.scenario import (
    SELL,
    START,
    STOP,
    XBT,
    Clock,
    CrashError,
    crash_at,
    no_fault,
    order,
)  # fmt: skip
from tests.trading.service.scenario import settings as paper
from trading.paper.matcher import PaperMatcher
from trading.service import saga
from trading.service.shell import Fault, TradingService
from trading.store.database import Database

D = Decimal


class Stop(msgspec.Struct, frozen=True):
    """One account's sell stop, placed in its turn (all at one clock time)."""

    account: int
    quantity: Decimal
    stop_price: Decimal


PLACED = [Stop(9, D(1), D(96)), Stop(7, D(1), D(96)), Stop(8, D(1), D("95.5"))]
"""Not in the accounts' order: the venue's queue is the order they reach it."""


def trade(trade_id: int, price: str, size: Decimal) -> Tick:
    ts = START + trade_id * 1_000
    return Tick(XBT, trade_id, D(price), size, Side.BUY, ts, ts)


def one_after_another(reports: list[object]) -> list[list[object]]:
    return [list(reports)] if reports else []


async def run(database: Database, stops: Sequence[Stop], size: Decimal, fault: Fault) -> list[D]:
    """Each account places its stop; a trade at 95 triggers them all (settled with ``fault``:
    a crash, then a new service resumes and the trade comes again); the next trade, of
    ``size``, fills them in the venue's queue. What each stop filled, in turn."""
    clock = Clock()
    trading = TradingService(database, PaperMatcher(paper()), clock=clock, fault=fault)
    await trading.on_ticks([trade(1, "100", D(1))])
    ids: list[str] = []
    for stop in stops:
        await trading.deposit(stop.account, "XBT", stop.quantity)
        request = order(f"stop-{len(ids)}", SELL, STOP, "1", stop_price=stop.stop_price)
        request = msgspec.structs.replace(request, account=stop.account, quantity=stop.quantity)
        ids.append((await trading.place(request)).order.order_id)
    try:
        await trading.on_ticks([trade(2, "95", D(1))])
    except CrashError:
        await trading._repository.snapshots_taken()  # its last acts, before the test wipes
        trading = TradingService(database, PaperMatcher(paper()), clock=clock)
        await trading.resume()
        await trading.on_ticks([trade(2, "95", D(1))])
    await trading.on_ticks([trade(3, "95", size)])
    filled = [
        (await trading.order(stop.account, order_id)).filled_quantity
        for stop, order_id in zip(stops, ids, strict=True)
    ]
    await trading._repository.snapshots_taken()
    return filled


def wipe(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE trading_events, trading_snapshots")


async def settled_in_turn(database: Database, stops: Sequence[Stop], size: Decimal) -> list[D]:
    """The reference: each account's reports settled after the one before, no crash."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(saga, "per_account", one_after_another)
        return await run(database, stops, size, no_fault)


@pytest.mark.parametrize(
    "fault",
    [no_fault, *(crash_at("triggered", n) for n in (1, 2, 3))],
    ids=["together", *(f"crash-after-triggered-{n}" for n in (1, 2, 3))],
)
async def test_several_accounts_stops_triggered_by_one_trade_queue_as_placed(
    database: Database, fresh_database: str, fault: Fault
) -> None:
    expected = await settled_in_turn(database, PLACED, D("1.5"))
    assert expected == [D(1), D("0.5"), D(0)]  # the venue's order, not the accounts'
    wipe(fresh_database)
    assert await run(database, PLACED, D("1.5"), fault) == expected


STOPS = st.lists(
    st.builds(
        Stop,
        st.integers(1, 4),
        st.sampled_from([D("0.5"), D(1), D(2)]),
        st.sampled_from([D(95), D("95.5"), D(96)]),
    ),
    min_size=2,
    max_size=5,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every run: a counterexample found is pinned below
)
@given(stops=STOPS, size=st.sampled_from([D("0.5"), D("1.5"), D(3)]), data=st.data())
async def test_any_stops_triggered_by_one_trade_fill_as_settled_in_turn_crash_or_not(
    database: Database, fresh_database: str, stops: list[Stop], size: Decimal, data: st.DataObject
) -> None:
    wipe(fresh_database)
    expected = await settled_in_turn(database, stops, size)
    crash = data.draw(st.integers(0, len(stops)), label="crash after triggered #")
    wipe(fresh_database)
    fault = crash_at("triggered", crash) if crash else no_fault
    assert await run(database, stops, size, fault) == expected


async def test_two_stops_of_one_account_and_one_of_another_crash_after_the_first_triggered(
    database: Database, fresh_database: str
) -> None:
    stops = [Stop(2, D("0.5"), D(95)), Stop(2, D("0.5"), D(95)), Stop(1, D(1), D(95))]
    expected = await settled_in_turn(database, stops, D("1.5"))
    wipe(fresh_database)
    assert await run(database, stops, D("1.5"), crash_at("triggered", 1)) == expected


async def fills_across_a_restart(database: Database, restart: bool) -> list[D]:
    """Stop a (96) placed before stop b (98, 2); trade 2 triggers b, trade 3 fills half of
    it, trade 4 fills a little more and triggers a; then (``restart``: a new service resumes
    from the store) trade 5, too small for both, goes to the taker queued first: b."""
    clock = Clock()
    trading = TradingService(database, PaperMatcher(paper()), clock=clock)
    await trading.on_ticks([trade(1, "100", D(1))])
    await trading.deposit(7, "XBT", D(3))
    placed = []
    for name, quantity, stop in (("a", D(1), D(96)), ("b", D(2), D(98))):
        request = order(name, SELL, STOP, "1", stop_price=stop)
        request = msgspec.structs.replace(request, account=7, quantity=quantity)
        placed.append((await trading.place(request)).order.order_id)
    await trading.on_ticks([trade(2, "98", D(1)), trade(3, "98", D(1)), trade(4, "96", D("0.5"))])
    if restart:
        await trading._repository.snapshots_taken()
        trading = TradingService(database, PaperMatcher(paper()), clock=clock)
        await trading.resume()
    await trading.on_ticks([trade(5, "95", D("0.5"))])
    filled = [(await trading.order(7, order_id)).filled_quantity for order_id in placed]
    await trading._repository.snapshots_taken()
    return filled


async def test_a_restart_keeps_triggered_stops_in_the_order_they_were_triggered(
    database: Database, fresh_database: str
) -> None:
    expected = await fills_across_a_restart(database, restart=False)
    assert expected == [D(0), D(2)]  # b, triggered first, took trade 5; a waits
    wipe(fresh_database)
    assert await fills_across_a_restart(database, restart=True) == expected

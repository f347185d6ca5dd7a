"""``mdp_trading_saga_outcomes_total``: each order saga is counted once, when it ends, by its
outcome; a restart's resume, a rebuild of the account from the store and a crash after any
step count no saga twice (on real PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from decimal import Decimal

import pytest

from core.trading_events import OrderCanceled
from tests.telemetry.values import value
from tests.trading.service.scenario import (
    ACCOUNT,
    BUY,
    LIMIT,
    Session,
    crash_at,
    no_fault,
    order,
    settings,
)  # fmt: skip
from tests.trading.service.test_service import SilentVenue, service, trade
from trading.paper.matcher import PaperMatcher
from trading.service.book import aggregate_id
from trading.service.saga import Outcome
from trading.store.database import Database
from trading.store.events import EventStore
from trading.store.wire import EVENT_CODEC

D = Decimal
OUTCOMES = "mdp_trading_saga_outcomes_total"
SCRIPTED = {"filled": 4, "canceled": 2, "partially-filled": 1, "denied": 2}
"""The script's sagas (``scenario.SCRIPT``): a-limit, b-stop, b2-stop and e-market filled;
c-ioc (its rest) and f-sell canceled unfilled; g-buy canceled by the kill switch after a
partial fill; d-too-big and d2-too-big denied."""


def counted() -> Counter[str]:
    return Counter({o.value: value(OUTCOMES, outcome=o.value) for o in Outcome})


def since(before: Counter[str]) -> dict[str, float]:
    """The outcomes counted since ``before`` (the registry is the process's)."""
    return dict(counted() - before)


async def test_the_script_counts_each_saga_once_by_outcome_and_a_rebuild_counts_none(
    database: Database,
) -> None:
    before = counted()
    session = Session(database, no_fault)
    await session.run()
    assert since(before) == SCRIPTED
    rebuilt = session.fresh()  # a new process: the account rebuilt from the store
    assert await rebuilt.resume() == 0
    await rebuilt.book(ACCOUNT)
    assert since(before) == SCRIPTED


@pytest.mark.parametrize(
    ("step", "occurrence"),
    [("submitted", 1), ("placed", 1), ("filled", 1), ("filled", 2), ("ended", 1), ("ended", 2)],
    ids=str,
)
async def test_a_crash_after_a_step_and_the_resume_count_each_saga_once(
    database: Database, step: str, occurrence: int
) -> None:
    before = counted()
    session = Session(database, crash_at(step, occurrence))
    await session.run()
    assert session.crashes == 1
    assert since(before) == SCRIPTED


async def test_a_venue_reject_and_a_timeout_are_counted_as_such(database: Database) -> None:
    before = counted()
    one_order = dataclasses.replace(settings(), max_open_orders=1)
    trading = service(database, PaperMatcher(one_order))
    await trading.deposit(ACCOUNT, "USDT", D(10_000))
    await trading.on_ticks([trade(1, "100")])
    await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))  # open: not ended
    await trading.place(order("b", BUY, LIMIT, "1", price=D(98)))  # too-many-orders
    silent = service(database, SilentVenue())
    await silent.place(order("c", BUY, LIMIT, "1", price=D(97)))  # venue-timeout
    assert since(before) == {"rejected": 1, "timed-out": 1}


async def test_an_order_ended_before_a_restart_is_counted_once_at_its_release_on_resume(
    database: Database,
) -> None:
    trading = service(database)
    await trading.deposit(ACCOUNT, "USDT", D(10_000))
    await trading.on_ticks([trade(1, "100", "1")])
    placed = (await trading.place(order("a", BUY, LIMIT, "1", price=D(99)))).order
    events = EventStore(database, EVENT_CODEC)
    version = len(events.read(aggregate_id(ACCOUNT)))
    canceled = OrderCanceled(account=ACCOUNT, order_id=placed.order_id, reason="old", ts=9)
    events.append(aggregate_id(ACCOUNT), version, [canceled])  # as a stream stored before
    before = counted()
    assert await service(database).resume() == 1  # the release ends the saga
    assert since(before) == {"canceled": 1}
    assert await service(database).resume() == 0  # and again: nothing left to end
    assert since(before) == {"canceled": 1}

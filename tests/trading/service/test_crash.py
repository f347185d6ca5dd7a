"""A crash after every step of the order saga, then a restart: the final balances, positions
and order states equal those of a run without the crash."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest

from core.trading_events import OrderStatus
from tests.trading.service.scenario import Session, comparable, crash_at, no_fault
from trading.service.shell import STEPS
from trading.store.database import Database


def wipe(url: str) -> None:
    """Forget every stored event (a second run starts from an empty store)."""
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE trading_events, trading_snapshots")


async def test_the_script_takes_every_saga_path_and_ends_holding_nothing(
    database: Database,
) -> None:
    seen: Counter[str] = Counter()

    def count(step: str, order_id: str) -> None:
        seen[step] += 1

    book = await Session(database, count).run()
    status = {order.client_order_id: order.status for order in book.orders.values()}
    assert status == {
        "a-limit": OrderStatus.FILLED,
        "b-stop": OrderStatus.FILLED,
        "b2-stop": OrderStatus.FILLED,
        "c-ioc": OrderStatus.CANCELED,
        "d-too-big": OrderStatus.DENIED,
        "d2-too-big": OrderStatus.DENIED,
        "e-market": OrderStatus.FILLED,
        "f-sell": OrderStatus.CANCELED,
        "g-buy": OrderStatus.CANCELED,  # by the kill switch, after a partial fill
    }
    denied = next(o for o in book.orders.values() if o.client_order_id == "d-too-big")
    assert denied.reason_code == "buying-power"
    assert all(seen[step] >= 2 for step in STEPS), seen  # every step twice, to crash at each
    assert book.account.reservations == {}
    assert book.account.reserved == {}
    assert book.account.kill_switch


@pytest.mark.parametrize(
    ("step", "occurrence"), [(step, n) for step in STEPS for n in (1, 2)], ids=str
)
async def test_a_crash_after_any_saga_step_resumes_to_the_end_of_a_clean_run(
    database: Database, fresh_database: str, step: str, occurrence: int
) -> None:
    clean = comparable(await Session(database, no_fault).run())
    wipe(fresh_database)
    session = Session(database, crash_at(step, occurrence))
    crashed = comparable(await session.run())
    assert session.crashes == 1
    assert crashed == clean

"""The read models on real PostgreSQL: they equal the domain's fold of the events, a rebuild
equals the live tables, an account never sees another's rows, and every query is bounded."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.sql import SQL, Identifier

from core import trading_events as te
from core.trading_events import TradingEvent
from tests.trading.readmodels.sessions import Log, expected, read, read_now, session
from tests.trading.test_properties import (
    FILL,
    INSTRUMENTS,
    OPS,
    Deposit,
    Fill,
    Op,
    Submit,
    Trade,
    amounts,
)
from trading.readmodels.queries import MAX_LIMIT, QueryError, TradingQueries
from trading.readmodels.tables import TABLES
from trading.store.database import Database
from trading.store.events import EventStore
from trading.store.projector import Projector

Store = EventStore[TradingEvent]
ACCOUNTS = itertools.count(100)
"""Each example has accounts of its own, so that examples share one database."""

FUNDED: list[Op] = [
    Deposit("USD", Decimal(50_000)),
    Deposit("BTC", Decimal(2)),
    Deposit("ETH", Decimal(20)),
    *(
        Trade(i, p)
        for i, p in zip(INSTRUMENTS, map(Decimal, ("30000", "2000", "0.066")), strict=True)
    ),
]
"""Money in every currency and a price on every instrument, so that orders fill."""
NEAR = st.builds(
    Submit, st.sampled_from(INSTRUMENTS), st.sampled_from(te.OrderSide),
    st.sampled_from([te.OrderType.LIMIT, te.OrderType.MARKET]),
    amounts(0, 1, 2).filter(bool).map(lambda q: q / 4), amounts(-2, 2, 1),
    st.sampled_from(te.TimeInForce),
)  # fmt: skip
"""An order within the risk limits (small, near the last price)."""
STEPS = st.one_of(OPS.map(lambda op: [op]), st.tuples(NEAR, FILL).map(list))
NEAR_BUY: Op = Submit(
    "SYNTH:BTCUSD", te.OrderSide.BUY, te.OrderType.LIMIT, Decimal("0.1"), Decimal(0),
    te.TimeInForce.GTC,
)  # fmt: skip
FILL_ALL: Op = Fill(pick=0, share=Decimal(1), move=Decimal(0), maker=True)
SESSION = st.lists(STEPS, min_size=10, max_size=40).map(
    lambda steps: [*FUNDED, *itertools.chain.from_iterable(steps)]
)
"""Round 1's random sessions, with as many orders that fill besides."""
DB_EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def contents(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, sorted."""
    with psycopg.connect(url) as conn:
        return {
            table: sorted(
                conn.execute(
                    SQL("SELECT * FROM {}.{}").format(Identifier(schema), Identifier(table))
                ).fetchall()
            )
            for table in TABLES
        }


@DB_EXAMPLES
@given(ops=SESSION, cut=st.floats(0, 1))
def test_the_read_models_equal_the_fold_of_the_events(
    database: Database,
    events: Store,
    projector: Projector[TradingEvent],
    ops: list[Op],
    cut: float,
) -> None:
    """Projected in two catch-ups (the first after a random share of the events), the
    queries show what the domain's fold shows: every order (status, filled quantity and
    notional, fills), the fills, each position (average price, realised and unrealised
    P&L) and each balance (cash, reserved, available, fees)."""
    account = next(ACCOUNTS)
    history, last = session(account, ops)
    log = Log(events)
    middle = int(len(history) * cut)
    log.append(history[:middle])
    projector.catch_up()
    log.append(history[middle:])
    projector.catch_up()
    url, schema = database.settings.url, projector.model.schema
    assert read_now(url, schema, account, last) == expected(account, history, last)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sessions=st.lists(SESSION, min_size=2, max_size=3))
def test_rebuild_equals_the_live_read_models(
    database: Database,
    events: Store,
    projector: Projector[TradingEvent],
    sessions: list[list[Op]],
) -> None:
    """Rebuilt from zero (the whole log, every example's accounts), every table holds the
    same rows as the live one, which kept up with the log as it grew (the same numbers
    ``seq`` too); and the rebuilt tables follow the log after."""
    log = Log(events)
    for ops in sessions:
        log.append(session(next(ACCOUNTS), ops)[0])
        projector.catch_up()
    before = contents(database.settings.url, projector.model.schema)
    assert projector.rebuild() == projector.position() > 0
    assert contents(database.settings.url, projector.model.schema) == before
    more, _ = session(next(ACCOUNTS), sessions[0])
    log.append(more)
    assert projector.catch_up() == len(more)


class CrashError(Exception):
    """The fault hook's stand-in for a process that dies."""


def test_a_rebuild_that_dies_half_way_leaves_the_live_tables_and_a_rerun_completes(
    database: Database, events: Store, projector: Projector[TradingEvent]
) -> None:
    for account in (1, 2, 3):
        Log(events).append(session(account, [*FUNDED, *[NEAR_BUY, FILL_ALL] * 4])[0])
    projector.catch_up()
    url, schema = database.settings.url, projector.model.schema
    before = contents(url, schema)
    last = projector.position()
    middle = last // 2

    def crash(notification_id: int) -> None:
        if notification_id == middle:
            raise CrashError

    dying = Projector(database, events, projector.model, batch=7, after_project=crash)
    with pytest.raises(CrashError):
        dying.rebuild()
    assert contents(url, schema) == before
    assert projector.position() == last
    assert projector.rebuild() == last
    assert contents(url, schema) == before


async def test_an_account_never_sees_another_accounts_rows(
    database: Database, events: Store, projector: Projector[TradingEvent]
) -> None:
    """Two accounts with the same orders (one of them holding only deposits): each query of
    one returns its own rows and nothing of the other's; an order id of the other is not found."""
    history, last = session(1, [*FUNDED, NEAR_BUY, FILL_ALL])
    other = [
        msgspec.structs.replace(event, account=2)
        for event in history
        if isinstance(event, te.FundsDeposited)
    ]
    Log(events).append([*history, *other])
    projector.catch_up()
    async with TradingQueries.open(database.settings.url, projector.model.schema) as queries:
        mine = await read(queries, 1, last)
        assert mine == expected(1, history, last)
        assert await read(queries, 2, last) == expected(2, other, last)
        assert await read(queries, 3, last) == expected(3, [], last)
        assert mine.orders
        assert mine.fills
        assert mine.positions
        assert await queries.order(2, mine.orders[0].order_id) is None


async def test_every_query_is_bounded_and_pages_by_seq(
    database: Database, events: Store, projector: Projector[TradingEvent]
) -> None:
    history, _ = session(1, FUNDED + [NEAR_BUY, FILL_ALL] * 5)
    Log(events).append(history)
    projector.catch_up()
    async with TradingQueries.open(database.settings.url, projector.model.schema) as queries:
        every = await queries.orders(1, limit=MAX_LIMIT)
        assert len(every) == 5
        pages = [await queries.orders(1, limit=2, after=after) for after in (0, 2, 4)]
        assert [view.seq for page in pages for view in page] == [1, 2, 3, 4, 5]
        assert [view.seq for view in await queries.fills(1, limit=3, after=1)] == [2, 3, 4]
        for call in (
            queries.orders(1, limit=0),
            queries.orders(1, limit=MAX_LIMIT + 1),
            queries.fills(1, limit=-1),
        ):
            with pytest.raises(QueryError) as refused:
                await call
            assert refused.value.code == "bad-limit"
        with pytest.raises(QueryError) as refused:
            await queries.fills(1, after=-1)
        assert refused.value.code == "bad-cursor"
        with pytest.raises(QueryError) as refused:
            await queries.balances(-1)
        assert refused.value.code == "bad-account"
        with pytest.raises(QueryError) as refused:
            await queries.order(1, "x" * 65)
        assert refused.value.code == "bad-order-id"

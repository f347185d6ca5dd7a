"""The append on psycopg's async connection: the same statements, round trips and rules as
the recorder's, awaited on the event loop with no worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from tests.trading.store import toy
from tests.trading.store.test_append import READER, stored
from tests.trading.store.turns import counted_database
from trading.store.aggregates import Aggregate
from trading.store.aio import AsyncRepository
from trading.store.aio_append import AsyncAppender
from trading.store.database import Database
from trading.store.errors import AlreadyTracked, ConcurrencyConflict
from trading.store.events import Append, EventStore
from trading.store.log import NotificationLog
from trading.store.repository import Repository


@pytest.fixture
async def appender(database: Database) -> AsyncIterator[AsyncAppender]:
    appender = AsyncAppender(database)
    yield appender
    await appender.aclose()


async def test_an_async_append_is_one_round_trip_and_keeps_the_recorder_s_rules(
    fresh_database: str,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        relay, database = stack.enter_context(counted_database(fresh_database))
        events = EventStore(database, toy.CODEC)
        appender = AsyncAppender(database)
        turns: dict[str, int] = {}
        stack.push_async_callback(appender.aclose)

        async def count(name: str, *appends: Append[toy.ToyEvent]) -> list[list[int]]:
            relay.reset()
            try:
                return await events.append_many_async(appends, appender)
            finally:
                turns[name] = relay.turns

        await count("connect", Append("account:1", 0, [toy.Opened(1)]))
        ids = await count("append", Append("account:1", 1, [toy.Deposited(1, 1)]))
        more = await count(
            "group",
            Append("account:2", 0, [toy.Opened(2)]),
            Append("account:3", 0, [toy.Opened(3)]),
        )
        with pytest.raises(ConcurrencyConflict) as caught:
            await count("conflict", Append("account:1", 1, [toy.Deposited(1, 3)]))
        assert (caught.value.aggregate_id, caught.value.expected_version) == ("account:1", 1)
        await count("tracked", Append("account:1", 2, [toy.Withdrawn(1, 1)], Tracking(READER, 1)))
        with pytest.raises(AlreadyTracked):
            await count("replayed", Append("account:1", 3, [toy.Opened(1)], Tracking(READER, 1)))
        assert NotificationLog(database).positions("commands@c/") == {READER: 1}
    del turns["connect"]
    assert turns == {"append": 1, "group": 1, "conflict": 1, "tracked": 2, "replayed": 2}
    assert len(ids[0]) == 1
    assert ids[0][0] < more[0][0] < more[1][0]
    assert stored(fresh_database) == [
        ("account:1", 1),
        ("account:1", 2),
        ("account:2", 1),
        ("account:3", 1),
        ("account:1", 3),
    ]


async def test_group_commits_on_the_async_connection_keep_one_result_and_one_conflict_each(
    repository: Repository[toy.Balance, toy.ToyEvent], appender: AsyncAppender
) -> None:
    store = AsyncRepository(repository, appender=appender)
    opened: list[Aggregate[toy.Balance]] = [
        Aggregate(f"account:{n}", 0, None) for n in range(1, 11)
    ]
    saved = await asyncio.gather(*(store.save(a, [toy.Opened(n)]) for n, a in enumerate(opened, 1)))
    assert store.commits == 1
    stale = store.save(saved[0], [toy.Deposited(1, 1)])
    fresh = [store.save(a, [toy.Deposited(n, n)]) for n, a in enumerate(saved[1:], 2)]
    first = store.save(saved[0], [toy.Deposited(1, 5)])
    results = await asyncio.gather(first, stale, *fresh, return_exceptions=True)
    assert isinstance(results[1], ConcurrencyConflict)
    assert [r.version for r in results if isinstance(r, Aggregate)] == [2] * 10
    for aggregate in results:
        if isinstance(aggregate, Aggregate):
            assert await store.load(aggregate.id) == aggregate
    await store.aclose()


async def test_a_sync_and_an_async_writer_racing_at_one_version_store_one_append(
    events: EventStore[toy.ToyEvent], appender: AsyncAppender
) -> None:
    events.append("account:1", 0, [toy.Opened(1)])
    for amount in range(1, 6):
        version = len(events.read("account:1"))
        outcomes = await asyncio.gather(
            asyncio.to_thread(events.append, "account:1", version, [toy.Deposited(1, amount)]),
            events.append_many_async(
                [Append("account:1", version, [toy.Withdrawn(1, amount)])], appender
            ),
            return_exceptions=True,
        )
        assert sorted(type(outcome).__name__ for outcome in outcomes) == [
            "ConcurrencyConflict",
            "list",
        ]
    assert [item.version for item in events.read("account:1")] == list(range(1, 7))


async def test_the_async_connection_lost_between_appends_is_made_again(
    database: Database, events: EventStore[toy.ToyEvent], appender: AsyncAppender
) -> None:
    await events.append_many_async([Append("account:1", 0, [toy.Opened(1)])], appender)
    assert appender._conn is not None
    pid = appender._conn.info.backend_pid
    with psycopg.connect(database.settings.url, autocommit=True) as admin:
        killed = admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchall()
    assert killed == [(True,)]
    await events.append_many_async([Append("account:1", 1, [toy.Deposited(1, 2)])], appender)
    assert appender._conn is not None
    assert appender._conn.info.backend_pid != pid
    assert [item.version for item in events.read("account:1")] == [1, 2]


async def test_an_append_cancelled_mid_pipeline_closes_its_connection(
    database: Database, events: EventStore[toy.ToyEvent], appender: AsyncAppender
) -> None:
    await events.append_many_async([Append("account:1", 0, [toy.Opened(1)])], appender)
    with psycopg.connect(database.settings.url) as blocker:  # holds the table's lock
        blocker.execute(database.events.lock_table_statements[-1])
        append = asyncio.create_task(
            events.append_many_async([Append("account:1", 1, [toy.Deposited(1, 2)])], appender)
        )
        while not waiting_for_lock(database):
            await asyncio.sleep(0.01)
        append.cancel()
        with pytest.raises(asyncio.CancelledError):
            await append
        assert appender._conn is None
        blocker.rollback()
    await events.append_many_async([Append("account:1", 1, [toy.Deposited(1, 3)])], appender)
    assert [(item.version, item.event) for item in events.read("account:1")] == [
        (1, toy.Opened(1)),
        (2, toy.Deposited(1, 3)),
    ]


async def test_two_callers_at_once_append_one_after_the_other(
    events: EventStore[toy.ToyEvent], appender: AsyncAppender
) -> None:
    ids = await asyncio.gather(
        *(
            events.append_many_async([Append(f"account:{n}", 0, [toy.Opened(n)])], appender)
            for n in range(1, 6)
        )
    )
    assert sorted(one[0][0] for one in ids) == [one[0][0] for one in ids]
    assert [len(events.read(f"account:{n}")) for n in range(1, 6)] == [1] * 5


def waiting_for_lock(database: Database) -> bool:
    """True once a backend of the test's database waits for a lock."""
    with psycopg.connect(database.settings.url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
    return row is not None and row[0] > 0

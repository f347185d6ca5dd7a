"""One append, one round trip: the version check inside the insert, and what it must keep
(a conflict names its aggregate and stores nothing; racing writers store every append once,
in order; a failure or a crash mid-append leaves nothing half stored)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from tests.trading.kill import kill_when_ready
from tests.trading.store import toy
from tests.trading.store.turns import counted_database
from trading.store.database import Database, StoreSettings
from trading.store.errors import AlreadyTracked, ConcurrencyConflict
from trading.store.events import Append, EventStore
from trading.store.log import NotificationLog

READER = "commands@c/t/0"


def stored(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version FROM trading_events ORDER BY notification_id"
        ).fetchall()
    return [(str(aggregate_id), int(version)) for aggregate_id, version in rows]


def test_an_append_is_one_round_trip_and_one_with_a_reader_s_position_two(
    fresh_database: str,
) -> None:
    with counted_database(fresh_database) as (relay, database):
        events = EventStore(database, toy.CODEC)
        events.append("account:1", 0, [toy.Opened(1)])  # the connection is made
        turns: dict[str, int] = {}

        def count(name: str, append: Append[toy.ToyEvent], *more: Append[toy.ToyEvent]) -> None:
            relay.reset()
            try:
                events.append_many([append, *more])
            finally:
                turns[name] = relay.turns

        count("append", Append("account:1", 1, [toy.Deposited(1, 1)]))
        count("again", Append("account:1", 2, [toy.Deposited(1, 2), toy.Withdrawn(1, 1)]))
        count(
            "group",
            Append("account:2", 0, [toy.Opened(2)]),
            Append("account:3", 0, [toy.Opened(3)]),
        )
        with pytest.raises(ConcurrencyConflict):
            count("conflict", Append("account:1", 1, [toy.Deposited(1, 3)]))
        count("tracked", Append("account:1", 4, [toy.Deposited(1, 4)], Tracking(READER, 1)))
        with pytest.raises(AlreadyTracked):
            count("replayed", Append("account:1", 5, [toy.Deposited(1, 5)], Tracking(READER, 1)))
    assert turns == {
        "append": 1,
        "again": 1,
        "group": 1,
        "conflict": 1,
        "tracked": 2,
        "replayed": 2,
    }


@pytest.mark.parametrize("version", [0, 3])  # behind the stored one (a lost race), ahead (a gap)
def test_a_group_s_conflict_names_its_first_aggregate_not_at_its_version_and_stores_nothing(
    database: Database, events: EventStore[toy.ToyEvent], version: int
) -> None:
    events.append("account:1", 0, [toy.Opened(1)])
    with pytest.raises(ConcurrencyConflict) as caught:
        events.append_many(
            [
                Append("account:2", 0, [toy.Opened(2), toy.Deposited(2, 1)]),
                Append("account:1", version, [toy.Deposited(1, 7)]),
                Append("account:3", 9, [toy.Deposited(3, 1)]),
            ]
        )
    assert (caught.value.aggregate_id, caught.value.expected_version) == ("account:1", version)
    assert stored(database.settings.url) == [("account:1", 1)]


def test_racing_appenders_of_one_aggregate_store_every_append_once_in_version_order(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    events.append("account:1", 0, [toy.Opened(1)])
    start = threading.Barrier(4)
    conflicts = [0] * 4

    def write(writer: int) -> None:
        start.wait()
        for n in range(10):
            while True:
                version = len(events.read("account:1"))
                try:
                    events.append("account:1", version, [toy.Deposited(1, writer * 100 + n)])
                    break
                except ConcurrencyConflict:
                    conflicts[writer] += 1

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read = events.read("account:1")
    assert [item.version for item in read] == list(range(1, 42))
    amounts = sorted(
        item.event.amount for item in read[1:] if isinstance(item.event, toy.Deposited)
    )
    assert amounts == sorted(writer * 100 + n for writer in range(4) for n in range(10))
    assert stored(database.settings.url) == [("account:1", version) for version in range(1, 42)]


def test_a_database_error_mid_append_stores_nothing_and_the_next_append_runs(
    fresh_database: str,
) -> None:
    with Database(StoreSettings(fresh_database, pool_size=1)) as database:
        database.create_tables()
        twice = StoredEvent("account:9", 1, "opened", toy.CODEC.encode(toy.Opened(9)))
        with pytest.raises(IntegrityError):  # the primary key: the statement fails
            database.events.insert_events([twice, twice], expected=[("account:9", 0)])
        events = EventStore(database, toy.CODEC)
        assert events.read("account:9") == []
        events.append("account:9", 0, [toy.Opened(9)])  # the one connection is not left aborted
        assert stored(fresh_database) == [("account:9", 1)]


def _waiting_pid(url: str, deadline_s: float = 10.0) -> int:
    """The backend waiting on a lock on the tracking table."""
    end = time.monotonic() + deadline_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < end:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%trading_tracking%'"
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.02)
    raise AssertionError("no append waited on the tracking row")


def test_a_backend_killed_mid_append_stores_nothing_and_the_retry_stores_it_once(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    url = database.settings.url
    events.append("account:1", 0, [toy.Opened(1)], Tracking(READER, 1))
    log = NotificationLog(database)
    failures: list[BaseException] = []
    with psycopg.connect(url) as blocker:  # holds the reader's row: the append stops on it
        blocker.execute(
            "SELECT 1 FROM trading_tracking WHERE application_name = %s FOR UPDATE", (READER,)
        )

        def append() -> None:
            try:
                events.append("account:1", 1, [toy.Deposited(1, 5)], Tracking(READER, 2))
            except BaseException as exc:
                failures.append(exc)

        writer = threading.Thread(target=append)
        writer.start()
        pid = _waiting_pid(url)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert _waiting_pid(url) != pid  # the library's retry waits on the row again
        assert stored(url) == [("account:1", 1)]
        assert log.positions("commands@c/") == {READER: 1}
        blocker.rollback()
        writer.join(10)
    assert not writer.is_alive()
    assert failures == []
    assert stored(url) == [("account:1", 1), ("account:1", 2)]
    assert log.positions("commands@c/") == {READER: 2}


def test_a_process_killed_between_the_round_trips_of_an_append_stores_nothing(
    fresh_database: str,
) -> None:
    assert kill_when_ready("tests.trading.store.append_child", fresh_database, READER) == []
    with Database(StoreSettings(fresh_database)) as database:
        assert stored(fresh_database) == [("account:1", 1)]
        assert NotificationLog(database).positions("commands@c/") == {}
        events = EventStore(database, toy.CODEC)  # the table's lock went with the process
        events.append("account:1", 1, [toy.Deposited(1, 5)], Tracking(READER, 1))
        assert stored(fresh_database) == [("account:1", 1), ("account:1", 2)]

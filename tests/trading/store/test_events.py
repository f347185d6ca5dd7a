"""Append and read one aggregate's events; optimistic concurrency; msgspec bytes, no pickle."""

from __future__ import annotations

import threading

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from tests.trading.store import toy
from trading.store.aggregates import Versioned
from trading.store.database import Database, StoreSettings
from trading.store.errors import (
    AlreadyTracked,
    ConcurrencyConflict,
    InvalidAppendError,
    UndecodableEventError,
)
from trading.store.events import EventStore
from trading.store.log import NotificationLog


def test_appended_events_read_back_in_order_with_their_versions(
    events: EventStore[toy.ToyEvent],
) -> None:
    history = toy.history(7, 4)
    ids = events.append("account:7", 0, history[:2])
    more = events.append("account:7", 2, history[2:])
    assert (len(ids), len(more)) == (2, 3)
    assert ids + more == sorted(ids + more)
    read = events.read("account:7")
    assert read == [Versioned("account:7", n, e) for n, e in enumerate(history, start=1)]
    assert events.read("account:7", after_version=3) == read[3:]
    assert events.read("account:8") == []


def test_events_are_stored_as_msgspec_bytes_under_their_tag(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    events.append("account:1", 0, [toy.Opened(1), toy.Deposited(1, 5)])
    with psycopg.connect(database.settings.url) as conn:
        rows = conn.execute(
            "SELECT topic, state FROM trading_events ORDER BY notification_id"
        ).fetchall()
    assert [topic for topic, _ in rows] == ["opened", "deposited"]
    assert [bytes(state) for _, state in rows] == [
        toy.CODEC.encode(toy.Opened(1)),
        toy.CODEC.encode(toy.Deposited(1, 5)),
    ]


def test_a_second_writer_at_the_same_version_gets_a_concurrency_conflict(
    events: EventStore[toy.ToyEvent],
) -> None:
    events.append("account:1", 0, [toy.Opened(1)])
    events.append("account:1", 1, [toy.Deposited(1, 5)])
    with pytest.raises(ConcurrencyConflict) as caught:
        events.append("account:1", 1, [toy.Deposited(1, 6)])
    assert caught.value.code == "concurrency-conflict"
    assert caught.value.expected_version == 1
    assert [item.event for item in events.read("account:1")] == [
        toy.Opened(1),
        toy.Deposited(1, 5),
    ]


def test_an_expected_version_ahead_of_the_stored_one_is_a_conflict_not_a_gap(
    events: EventStore[toy.ToyEvent],
) -> None:
    events.append("account:1", 0, [toy.Opened(1)])
    with pytest.raises(ConcurrencyConflict):
        events.append("account:1", 3, [toy.Deposited(1, 5)])
    assert len(events.read("account:1")) == 1


def test_of_racing_writers_exactly_one_wins(events: EventStore[toy.ToyEvent]) -> None:
    events.append("account:1", 0, [toy.Opened(1)])
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def write(amount: int) -> None:
        start.wait()
        try:
            events.append("account:1", 1, [toy.Deposited(1, amount)])
            outcomes.append("stored")
        except ConcurrencyConflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["concurrency-conflict"] * 3 + ["stored"]
    assert len(events.read("account:1")) == 2


@pytest.mark.parametrize(
    ("aggregate_id", "expected", "count"),
    [("", 0, 1), ("account:1", -1, 1), ("account:1", 0, 0), ("a" * 201, 0, 1)],
)
def test_an_append_that_cannot_be_stored_is_refused_with_our_code(
    events: EventStore[toy.ToyEvent], aggregate_id: str, expected: int, count: int
) -> None:
    with pytest.raises(InvalidAppendError) as caught:
        events.append(aggregate_id, expected, [toy.Opened(1)] * count)
    assert caught.value.code == "invalid-append"


def test_a_record_that_is_not_its_topic_is_refused_on_read(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    events.append("account:1", 0, [toy.Opened(1)])
    with psycopg.connect(database.settings.url) as conn:
        conn.execute("UPDATE trading_events SET topic = 'deposited'")
    with pytest.raises(UndecodableEventError) as caught:
        events.read("account:1")
    assert caught.value.code == "undecodable-event"


def test_table_names_start_with_trading() -> None:
    with pytest.raises(ValueError, match="trading_"):
        StoreSettings("postgresql://x/y", events_table="stored_events")


def test_creating_the_tables_again_is_harmless(database: Database) -> None:
    database.create_tables()
    database.create_tables()


def test_the_log_lists_the_aggregates_of_a_prefix_taking_it_literally(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    for aggregate_id in ("account:12", "account:1", "accountX9", "other:1", "account_%:3"):
        events.append(aggregate_id, 0, [toy.Opened(1)])
    log = NotificationLog(database)
    assert log.aggregate_ids("account:") == ["account:1", "account:12"]
    assert log.aggregate_ids("account_%") == ["account_%:3"]
    assert log.aggregate_ids("none:") == []


def test_an_append_moves_a_reader_s_position_with_it_and_never_twice(
    database: Database, events: EventStore[toy.ToyEvent]
) -> None:
    log = NotificationLog(database)
    reader = "commands@c/t/0"
    events.append("account:1", 0, [toy.Opened(1)], Tracking(reader, 5))
    assert log.positions("commands@c/") == {reader: 5}
    for position in (5, 4):  # the same command again (a replay), or an older one
        with pytest.raises(AlreadyTracked, match="already at or past") as refused:
            events.append("account:1", 1, [toy.Deposited(1, 5)], Tracking(reader, position))
        assert refused.value.code == "already-applied"
    assert [item.event for item in events.read("account:1")] == [toy.Opened(1)]
    events.append("account:1", 1, [toy.Deposited(1, 5)], Tracking(reader, 6))
    assert log.positions("commands@c/") == {reader: 6}
    assert log.positions("commands@c_") == {}  # a prefix, never a pattern

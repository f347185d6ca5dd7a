"""Snapshots every N events: loading from one gives the state the full fold gives."""

from __future__ import annotations

import psycopg
import pytest

from tests.trading.store import toy
from trading.store.aggregates import Aggregate
from trading.store.database import Database
from trading.store.errors import ConcurrencyConflict
from trading.store.repository import Repository

Repo = Repository[toy.Balance, toy.ToyEvent]


def snapshot_versions(database: Database, aggregate_id: str) -> list[int]:
    with psycopg.connect(database.settings.url) as conn:
        rows = conn.execute(
            "SELECT originator_version FROM trading_snapshots WHERE originator_id = %s "
            "ORDER BY originator_version",
            (aggregate_id,),
        ).fetchall()
    return [version for (version,) in rows]


def save_in_steps(repository: Repo, aggregate_id: str, events: list[toy.ToyEvent]) -> None:
    aggregate: Aggregate[toy.Balance] = Aggregate(aggregate_id, 0, None)
    for start in range(0, len(events), 3):
        aggregate = repository.save(aggregate, events[start : start + 3])


def test_a_snapshot_is_taken_each_time_a_save_crosses_a_multiple_of_n(
    database: Database, repository: Repo
) -> None:
    save_in_steps(repository, "account:1", toy.history(1, 16))  # versions 3, 6, ... 17
    assert snapshot_versions(database, "account:1") == [6, 12, 15]


def test_the_state_loaded_from_a_snapshot_equals_the_full_fold(
    database: Database, repository: Repo
) -> None:
    events = toy.history(1, 23)
    save_in_steps(repository, "account:1", events)
    loaded = repository.load("account:1")
    assert snapshot_versions(database, "account:1")[-1] < loaded.version == len(events)
    assert loaded == repository.replay("account:1")
    state = None
    for event in events:
        state = toy.apply(state, event)
    assert loaded.state == state


def test_the_load_folds_only_the_events_after_the_latest_snapshot(
    database: Database, repository: Repo
) -> None:
    save_in_steps(repository, "account:1", toy.history(1, 11))
    with psycopg.connect(database.settings.url) as conn:  # the history before it is gone
        conn.execute("DELETE FROM trading_events WHERE originator_version <= 12")
    assert repository.load("account:1").version == 12


def test_losing_every_snapshot_changes_no_loaded_state(
    database: Database, repository: Repo
) -> None:
    save_in_steps(repository, "account:1", toy.history(1, 14))
    before = repository.load("account:1")
    with psycopg.connect(database.settings.url) as conn:
        conn.execute("DELETE FROM trading_snapshots")
    assert repository.load("account:1") == before


def test_a_save_from_a_stale_aggregate_is_a_conflict_and_stores_nothing(
    repository: Repo,
) -> None:
    fresh = repository.save(Aggregate("account:1", 0, None), [toy.Opened(1)])
    repository.save(fresh, [toy.Deposited(1, 4)])
    with pytest.raises(ConcurrencyConflict):
        repository.save(fresh, [toy.Deposited(1, 9)])
    assert repository.load("account:1").state == toy.Balance(1, 4, 1)


def test_a_save_the_fold_refuses_stores_nothing(repository: Repo) -> None:
    with pytest.raises(toy.NotOpenError):
        repository.save(Aggregate("account:1", 0, None), [toy.Deposited(1, 4)])
    assert repository.events.read("account:1") == []


def test_a_new_aggregate_loads_empty(repository: Repo) -> None:
    assert repository.load("account:9") == Aggregate("account:9", 0, None)

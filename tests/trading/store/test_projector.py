"""The projector: read models folded from the log, the position in the same transaction."""

from __future__ import annotations

import threading

import pytest

from tests.trading.store import read_model, toy
from trading.store.database import Database
from trading.store.events import EventStore
from trading.store.projector import Hook, Projector

Events = EventStore[toy.ToyEvent]


class CrashError(Exception):
    """The fault hook's stand-in for a process that dies."""


def store(events: Events, accounts: range, deposits: int) -> list[int]:
    ids: list[int] = []
    for account in accounts:
        ids += events.append(f"account:{account}", 0, toy.history(account, deposits))
    return ids


def projector(
    database: Database,
    events: Events,
    schema: str,
    batch: int = 500,
    after_project: Hook | None = None,
) -> Projector[toy.ToyEvent]:
    model = read_model.model(f"{database.schema}_{schema}")
    hooks = {"after_project": after_project} if after_project else {}
    made = Projector(database, events, model, batch=batch, **hooks)
    made.start()
    return made


def test_the_read_model_is_the_fold_of_the_events(database: Database, events: Events) -> None:
    ids = store(events, range(1, 4), 5)
    live = projector(database, events, "live", batch=4)
    assert live.catch_up() == len(ids)
    assert live.position() == ids[-1]
    rows = read_model.contents(database.settings.url, live.model.schema)
    balances = {}
    for account in range(1, 4):
        state = None
        for event in toy.history(account, 5):
            state = toy.apply(state, event)
        assert state is not None
        balances[account] = (account, state.cash, state.moves)
    assert rows["balances"] == sorted(balances.values())
    assert len(rows["ledger"]) == 3 * 5


def test_a_crash_in_the_middle_of_a_batch_then_a_restart_equals_a_clean_run(
    database: Database, events: Events
) -> None:
    ids = store(events, range(1, 4), 6)

    def crash(notification_id: int) -> None:
        if notification_id == ids[9]:  # the middle of the third batch of four
            raise CrashError

    crashing = projector(database, events, "live", batch=4, after_project=crash)
    with pytest.raises(CrashError):
        crashing.catch_up()
    assert crashing.position() == ids[7]  # two whole batches, nothing of the third
    restarted = projector(database, events, "live", batch=4)
    assert restarted.catch_up() == len(ids) - 8
    clean = projector(database, events, "clean")
    clean.catch_up()
    url = database.settings.url
    assert read_model.contents(url, restarted.model.schema) == read_model.contents(
        url, clean.model.schema
    )


def test_two_projectors_of_one_read_model_apply_each_event_once(
    database: Database, events: Events
) -> None:
    ids = store(events, range(1, 6), 8)
    racers = [projector(database, events, "live", batch=3) for _ in range(2)]
    threads = [threading.Thread(target=racer.catch_up) for racer in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clean = projector(database, events, "clean")
    clean.catch_up()
    url = database.settings.url
    assert racers[0].position() == ids[-1]
    assert read_model.contents(url, racers[0].model.schema) == read_model.contents(
        url, clean.model.schema
    )


def test_rebuild_replays_from_zero_into_tables_equal_to_the_live_ones(
    database: Database, events: Events
) -> None:
    live = projector(database, events, "live", batch=4)
    ids = store(events, range(1, 3), 5)
    live.catch_up()
    ids += store(events, range(3, 5), 4)
    live.catch_up()
    before = read_model.contents(database.settings.url, live.model.schema)
    assert live.rebuild() == ids[-1]
    assert read_model.contents(database.settings.url, live.model.schema) == before
    assert live.position() == ids[-1]
    more = store(events, range(5, 6), 2)  # the rebuilt tables are live: they follow the log
    assert live.catch_up() == len(more)


def test_rebuild_includes_events_stored_after_the_last_catch_up(
    database: Database, events: Events
) -> None:
    live = projector(database, events, "live")
    store(events, range(1, 3), 3)
    live.catch_up()
    ids = store(events, range(3, 4), 3)
    assert live.rebuild() == ids[-1]
    clean = projector(database, events, "clean")
    clean.catch_up()
    url = database.settings.url
    assert read_model.contents(url, live.model.schema) == read_model.contents(
        url, clean.model.schema
    )

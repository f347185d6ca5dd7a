"""The store under test, on a fresh database of each test's own (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.trading.store import toy
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.repository import Repository


@pytest.fixture
def database(fresh_database: str) -> Iterator[Database]:
    with Database(StoreSettings(fresh_database, snapshot_every=5)) as db:
        db.create_tables()
        yield db


@pytest.fixture
def events(database: Database) -> EventStore[toy.ToyEvent]:
    return EventStore(database, toy.CODEC)


@pytest.fixture
def repository(
    database: Database, events: EventStore[toy.ToyEvent]
) -> Repository[toy.Balance, toy.ToyEvent]:
    return Repository(database, events, toy.apply, toy.STATE_CODEC)

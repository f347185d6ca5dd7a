"""The trading read models on a fresh database of each test's own (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.trading_events import TradingEvent
from trading.readmodels.tables import model
from trading.store.database import Database, StoreSettings
from trading.store.events import EventStore
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC


@pytest.fixture
def database(fresh_database: str) -> Iterator[Database]:
    with Database(StoreSettings(fresh_database)) as db:
        db.create_tables()
        yield db


@pytest.fixture
def events(database: Database) -> EventStore[TradingEvent]:
    return EventStore(database, EVENT_CODEC)


@pytest.fixture
def projector(database: Database, events: EventStore[TradingEvent]) -> Projector[TradingEvent]:
    made = Projector(database, events, model(f"{database.schema}_read"), batch=50)
    made.start()
    return made

"""The service under test, on a fresh database of each test's own (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trading.store.database import Database, StoreSettings


@pytest.fixture
def database(fresh_database: str) -> Iterator[Database]:
    with Database(StoreSettings(fresh_database, snapshot_every=10)) as db:
        db.create_tables()
        yield db

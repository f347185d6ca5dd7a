"""The library's PostgreSQL datastore and recorders, opened from one of our URLs.

The ``eventsourcing`` library names every table with its schema; we take the schema the URL's
connections land in (``current_schema()``, which honours a ``search_path`` in the URL), so the
store lives beside the rest of the database. The tables are made by the library's own
``create_table`` at start-up, under an advisory lock so that two processes starting at once do
not race (docs/trading.md says why not by a numbered migration).

The library's datastore takes the address by its parts (:data:`NAMED`); every other parameter
of the URL (``sslmode``, ``sslrootcert``, ``sslcert``, ``options``, ``application_name``,
``target_session_attrs``...) is given to its pool's connections too, so the event store
connects as the read models do (a ``sslmode=verify-full`` is never dropped to ``prefer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

import psycopg
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from psycopg.conninfo import conninfo_to_dict

from trading.store.errors import StoreUnavailableError
from trading.store.recorder import CheckedRecorder

NAMED: Final = ("dbname", "host", "port", "user", "password")
"""The URL's parameters the library's datastore takes by name."""

CREATE_LOCK: Final = 0x74726164655F7374
"""The advisory lock key ("trade_st") that serialises the creation of the store's tables."""


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Where the store is and how it behaves; every table name starts with ``trading_``."""

    url: str = field(repr=False)  # its password never prints
    events_table: str = "trading_events"
    snapshots_table: str = "trading_snapshots"
    tracking_table: str = "trading_tracking"
    snapshot_every: int = 100
    """Snapshot an aggregate each time its version crosses a multiple of this (0: never)."""
    pool_size: int = 4
    connect_timeout_s: float = 1.0
    """How long a call waits for a connection of the pool (the library tries a call 10 times)."""

    def __post_init__(self) -> None:
        for name in (self.events_table, self.snapshots_table, self.tracking_table):
            if not name.startswith("trading_") or len(name) > 40:
                raise ValueError(f"table {name!r}: names start with trading_, 40 chars at most")
        if self.snapshot_every < 0 or self.pool_size < 1:
            raise ValueError("snapshot_every is at least 0 and pool_size at least 1")


def current_schema(url: str) -> str:
    """The schema unqualified names resolve to on a connection made with ``url``."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT current_schema()").fetchone()
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(f"cannot reach the event store's database: {exc}") from None
    if row is None or row[0] is None:
        raise StoreUnavailableError("the URL's search_path names no existing schema")
    return str(row[0])


def connection_parameters(url: str) -> dict[str, str]:
    """The parameters of ``url`` that the datastore does not take by name (:data:`NAMED`)."""
    return {
        name: str(value)
        for name, value in conninfo_to_dict(url).items()
        if name not in NAMED and value is not None
    }


class Database:
    """The datastore and the three recorders of the store (use as a context manager)."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.schema = current_schema(settings.url)
        params = conninfo_to_dict(settings.url)
        self.datastore = PostgresDatastore(
            dbname=str(params.get("dbname", "")),
            host=str(params.get("host", "")),
            port=str(params.get("port", "5432")),
            user=str(params.get("user", "")),
            password=str(params.get("password", "")),
            schema=self.schema,
            pool_size=settings.pool_size,
            connect_timeout=settings.connect_timeout_s,
            pre_ping=False,
            originator_id_type="text",
        )
        pool = self.datastore.pool
        if not isinstance(pool.kwargs, dict):  # the library gives the parts as a dict
            raise TypeError("the datastore's pool takes no connection parameters")
        pool.kwargs = {**pool.kwargs, **connection_parameters(settings.url)}
        self.tracking = PostgresTrackingRecorder(
            self.datastore, tracking_table_name=settings.tracking_table
        )
        self.events = CheckedRecorder(
            self.datastore, events_table_name=settings.events_table, tracking=self.tracking
        )
        self.snapshots = PostgresAggregateRecorder(
            self.datastore, events_table_name=settings.snapshots_table
        )

    def create_tables(self) -> None:
        """Create what is missing (idempotent; safe from several processes at once)."""
        try:
            with psycopg.connect(self.settings.url, autocommit=True) as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (CREATE_LOCK,))
                try:
                    for recorder in (self.events, self.snapshots, self.tracking):
                        recorder.create_table()
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (CREATE_LOCK,))
        except (psycopg.OperationalError, PersistenceError) as exc:
            raise StoreUnavailableError(f"cannot create the event store's tables: {exc}") from None

    def close(self) -> None:
        self.datastore.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

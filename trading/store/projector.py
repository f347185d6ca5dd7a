"""Read models: the notification log folded into tables, each change committed together with
the projector's position.

A :class:`ReadModel` is the tables' DDL and a pure projection: one event in, SQL upserts on
the given cursor out. The projector applies a batch of notifications in one transaction, in
the read model's own schema, and records the last id in the library's tracking table in the
same transaction: a crash rolls back both, so no event is applied twice or skipped. The
tracking row only moves forward (the library refuses a position that does not advance), and a
transaction-scoped advisory lock keeps two projectors of one read model from interleaving.

:meth:`Projector.rebuild` replays the log from zero into a fresh schema, then, under the same
lock, catches it up and swaps it in for the live one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from eventsourcing.persistence import Notification, Tracking
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from trading.store.aggregates import Versioned
from trading.store.database import Database
from trading.store.errors import StoreUnavailableError
from trading.store.events import EventStore, Unavailable
from trading.store.log import NotificationLog

E = TypeVar("E")

Project = Callable[[Cursor[DictRow], Versioned[E]], None]
"""The projection: the upserts one event makes, on a cursor whose ``search_path`` is the read
model's schema (so its SQL names tables unqualified)."""

Hook = Callable[[int], None]
"""A fault hook, called after each notification is projected (tests crash there)."""


def _no_hook(_: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ReadModel(Generic[E]):
    schema: str
    """The live schema of its tables (made if missing)."""
    ddl: str
    """``CREATE TABLE`` statements for its tables, unqualified."""
    project: Project[E]

    def __post_init__(self) -> None:
        if not self.schema.isidentifier() or len(self.schema) > 50:
            raise ValueError(f"read model schema {self.schema!r}: an identifier of 50 chars")


class Projector(Generic[E]):
    def __init__(
        self,
        database: Database,
        events: EventStore[E],
        model: ReadModel[E],
        *,
        batch: int = 500,
        after_project: Hook = _no_hook,
    ) -> None:
        self._db = database
        self._events = events
        self._log = NotificationLog(database)
        self.model = model
        self._batch = batch
        self._after_project = after_project

    @staticmethod
    def reader(schema: str) -> str:
        """The tracking name of the read model in ``schema``."""
        return f"projector:{schema}"

    def position(self) -> int:
        return self._log.position(self.reader(self.model.schema))

    def start(self) -> None:
        """Make the live schema and tables where missing."""
        with self._transaction() as curs:
            self._create(curs, self.model.schema)

    def catch_up(self) -> int:
        """Project everything the log holds after the position; return how many."""
        total = 0
        while True:
            with self._transaction() as curs:
                count = self._step(curs, self.model.schema)
            if count == 0:
                return total
            total += count

    def rebuild(self) -> int:
        """Replay the log from zero into fresh tables and put them in place of the live ones;
        return the position they are at."""
        live, fresh = self.model.schema, f"{self.model.schema}_rebuild"
        with self._transaction() as curs:
            curs.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(fresh)))
            self._forget(curs, fresh)
            self._create(curs, fresh)
        while True:  # the bulk, without holding the live projector up
            with self._transaction() as curs:
                if self._step(curs, fresh) == 0:
                    break
        with self._transaction() as curs:  # the tail and the swap, under the live lock
            self._lock(curs, live)
            while self._step(curs, fresh, lock=False):
                pass
            position = self._position_in(curs, fresh)
            self._forget(curs, live)
            self._forget(curs, fresh)
            if position:
                self._db.tracking._insert_tracking(curs, Tracking(self.reader(live), position))
            curs.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(live)))
            curs.execute(
                SQL("ALTER SCHEMA {} RENAME TO {}").format(Identifier(fresh), Identifier(live))
            )
        return position

    # -- one transaction's work ------------------------------------------------------------

    def _step(self, curs: Cursor[DictRow], schema: str, *, lock: bool = True) -> int:
        """Project the next batch into ``schema`` and advance its position, in ``curs``'s
        transaction; return how many."""
        if lock:
            self._lock(curs, schema)
        batch = self._log.after(self._position_in(curs, schema), self._batch)
        if not batch:
            return 0
        curs.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(schema)))
        self._project(curs, batch)
        tracking = Tracking(self.reader(schema), batch[-1].id)
        self._db.tracking._insert_tracking(curs, tracking)
        return len(batch)

    def _project(self, curs: Cursor[DictRow], batch: Sequence[Notification]) -> None:
        for notification in batch:
            self.model.project(curs, self._events.decoded(notification))
            self._after_project(notification.id)

    def _create(self, curs: Cursor[DictRow], schema: str) -> None:
        curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
        curs.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(schema)))
        curs.execute(self.model.ddl.encode())

    def _lock(self, curs: Cursor[DictRow], schema: str) -> None:
        curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.reader(schema),))

    def _position_in(self, curs: Cursor[DictRow], schema: str) -> int:
        curs.execute(self._db.tracking.max_tracking_id_statement, (self.reader(schema),))
        row = curs.fetchone()
        return int(row["max"]) if row and row["max"] is not None else 0

    def _forget(self, curs: Cursor[DictRow], schema: str) -> None:
        curs.execute(
            SQL("DELETE FROM {}.{} WHERE application_name = %s").format(
                Identifier(self._db.schema), Identifier(self._db.settings.tracking_table)
            ),
            (self.reader(schema),),
        )

    @contextmanager
    def _transaction(self) -> Iterator[Cursor[DictRow]]:
        """One committed transaction on the library's pool; an outage becomes ours."""
        try:
            with self._db.datastore.transaction(commit=True) as curs:
                yield curs
        except Unavailable as exc:
            raise StoreUnavailableError(f"the read model's database: {exc}") from None

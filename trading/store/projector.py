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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from trading.store.aggregates import Versioned
from trading.store.database import Database
from trading.store.events import EventStore
from trading.store.log import Claim, NotificationLog
from trading.store.wake import LogChannel

E = TypeVar("E")

Project = Callable[[Cursor[DictRow], Sequence[Versioned[E]]], None]
"""The projection: the upserts a batch of events makes, in order, on a cursor whose
``search_path`` is the read model's schema (so its SQL names tables unqualified). A batch is
one transaction, so a projection may read each row once and write its final state once."""


def each(project: Callable[[Cursor[DictRow], Versioned[E]], None]) -> Project[E]:
    """The projection that applies ``project`` to each event of a batch in turn."""

    def batch(curs: Cursor[DictRow], items: Sequence[Versioned[E]]) -> None:
        for item in items:
            project(curs, item)

    return batch


READER_PREFIX = "projector:"

Hook = Callable[[int], None]
"""A fault hook, called for each notification of a batch once the batch is projected, before
its transaction commits (tests crash there)."""


def _no_hook(_: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ReadModel(Generic[E]):
    schema: str
    """The live schema of its tables (made if missing)."""
    ddl: str
    """``CREATE TABLE IF NOT EXISTS`` statements for its tables, unqualified (run at every
    start, and into the fresh schema of a rebuild)."""
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
        self._events = events
        self._log = NotificationLog(database)
        self.model = model
        self._batch = batch
        self._after_project = after_project

    @staticmethod
    def reader(schema: str) -> str:
        """The tracking name of the read model in ``schema``."""
        return READER_PREFIX + schema

    def channel(self, retry_s: float) -> LogChannel:
        """Where the log notifies each append."""
        return self._log.channel(retry_s)

    def position(self) -> int:
        return self._log.position(self.reader(self.model.schema))

    def start(self) -> None:
        """Make the live schema and tables where missing, in the projector's turn (instances
        starting at once would race on ``CREATE ... IF NOT EXISTS``)."""
        with self._log.transaction() as curs:
            self._log.claim(curs, self.reader(self.model.schema))
            self._create(curs, self.model.schema)

    def catch_up(self) -> int:
        """Project everything the log holds after the position; return how many."""
        total = 0
        while True:
            with self._log.transaction() as curs:
                count = self._step(self._log.claim(curs, self.reader(self.model.schema)))
            if count == 0:
                return total
            total += count

    def rebuild(self, progress: Hook = _no_hook) -> int:
        """Replay the log from zero into fresh tables and put them in place of the live ones;
        return the position they are at. ``progress`` is told the position after each batch."""
        live, fresh = self.model.schema, f"{self.model.schema}_rebuild"
        with self._log.transaction() as curs:
            curs.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(fresh)))
            self._log.forget(curs, self.reader(fresh))
            self._create(curs, fresh)
        while True:  # the bulk, without holding the live projector up
            with self._log.transaction() as curs:
                claim = self._log.claim(curs, self.reader(fresh))
                if self._step(claim) == 0:
                    break
            progress(claim.position)
        with self._log.transaction() as curs:  # the tail and the swap, in the live one's turn
            live_claim = self._log.claim(curs, self.reader(live))
            rebuilt = self._log.claim(curs, self.reader(fresh), lock=False)
            while self._step(rebuilt):
                progress(rebuilt.position)
            self._log.forget(curs, self.reader(live))
            self._log.forget(curs, self.reader(fresh))
            if rebuilt.position:
                live_claim.advance(rebuilt.position)
            curs.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(live)))
            curs.execute(
                SQL("ALTER SCHEMA {} RENAME TO {}").format(Identifier(fresh), Identifier(live))
            )
        return rebuilt.position

    def _step(self, claim: Claim) -> int:
        """Project the batch after ``claim``'s position into its schema and advance it, in
        the claim's transaction; return how many."""
        batch = self._log.after(claim.position, self._batch)
        if not batch:
            return 0
        schema = claim.reader.removeprefix(READER_PREFIX)
        curs = claim.cursor
        curs.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(schema)))
        self.model.project(curs, [self._events.decoded(notification) for notification in batch])
        for notification in batch:
            self._after_project(notification.id)
        claim.advance(batch[-1].id)
        return len(batch)

    def _create(self, curs: Cursor[DictRow], schema: str) -> None:
        curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
        curs.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(schema)))
        curs.execute(self.model.ddl.encode())

"""The store's shared notification log and the positions its readers track.

Every stored event has a notification id, its place in one log of all aggregates (the
library's application recorder hands the ids out under a table lock, so a reader never passes
a gap that fills later). A reader (the outbox publisher, a projector) records the id it has
handled in the library's tracking table under a name of its own, and resumes after it.

A reader works in claims: one transaction that holds the reader's advisory lock (so two
instances of one reader take turns and never handle a notification twice), reads its position,
and records the new one when its work is done; a crash rolls the whole claim back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from eventsourcing.persistence import Notification, Tracking
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from trading.store.database import Database
from trading.store.errors import StoreUnavailableError
from trading.store.events import Unavailable
from trading.store.wake import LogChannel

MAX_BATCH = 10_000
"""Notifications one read may return."""


class Claim:
    """A reader's turn, inside a transaction: where it is, and how to move it on."""

    def __init__(self, database: Database, curs: Cursor[DictRow], reader: str) -> None:
        self._tracking = database.tracking
        self.cursor = curs
        self.reader = reader
        curs.execute(self._tracking.max_tracking_id_statement, (reader,))
        row = curs.fetchone()
        self.position: int = int(row["max"]) if row and row["max"] is not None else 0

    def advance(self, position: int) -> None:
        """Record ``position`` in the claim's transaction (the library refuses one that does
        not move forward)."""
        self._tracking._insert_tracking(self.cursor, Tracking(self.reader, position))
        self.position = position


class NotificationLog:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._events = database.events

    def channel(self, retry_s: float) -> LogChannel:
        """Where the library notifies each append (the events table's channel)."""
        return LogChannel(self._db.settings.url, self._events.channel_name, retry_s=retry_s)

    def after(self, position: int, limit: int) -> Sequence[Notification]:
        """Up to ``limit`` notifications after ``position``, in id order."""
        if not 1 <= limit <= MAX_BATCH:
            raise ValueError(f"a batch has 1 to {MAX_BATCH} notifications, not {limit}")
        try:
            rows: Sequence[Notification] = self._events.select_notifications(
                position, limit, inclusive_of_start=False
            )
        except Unavailable as exc:
            raise StoreUnavailableError(f"reading the log failed: {exc}") from None
        return rows

    def last_id(self) -> int:
        """The id of the newest notification (0: the log is empty)."""
        try:
            return self._events.max_notification_id() or 0
        except Unavailable as exc:
            raise StoreUnavailableError(f"reading the log failed: {exc}") from None

    def aggregate_ids(self, prefix: str) -> list[str]:
        """The ids of every aggregate whose id starts with ``prefix`` (``account:``), sorted."""
        pattern = _like(prefix)
        with self.transaction() as curs:
            curs.execute(
                SQL("SELECT DISTINCT originator_id FROM {}.{} WHERE originator_id LIKE %s").format(
                    Identifier(self._db.schema), Identifier(self._db.settings.events_table)
                ),
                (pattern,),
            )
            return sorted(str(row["originator_id"]) for row in curs.fetchall())

    def positions(self, prefix: str) -> dict[str, int]:
        """The position of every reader whose name starts with ``prefix``, by name."""
        pattern = _like(prefix)
        with self.transaction() as curs:
            curs.execute(
                SQL("SELECT application_name, notification_id FROM {}.{} "
                    "WHERE application_name LIKE %s").format(
                    Identifier(self._db.schema), Identifier(self._db.settings.tracking_table)
                ),
                (pattern,),
            )  # fmt: skip
            return {str(row["application_name"]): int(row["notification_id"]) for row in curs}

    def position(self, reader: str) -> int:
        """The id ``reader`` has handled up to (0: none yet)."""
        try:
            return self._db.tracking.max_tracking_id(reader) or 0
        except Unavailable as exc:
            raise StoreUnavailableError(f"reading {reader!r}'s position failed: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[Cursor[DictRow]]:
        """One transaction on the library's pool, committed at the end; an outage is ours."""
        try:
            with self._db.datastore.transaction(commit=True) as curs:
                yield curs
        except Unavailable as exc:
            raise StoreUnavailableError(f"the event store's database: {exc}") from None

    def claim(self, curs: Cursor[DictRow], reader: str, *, lock: bool = True) -> Claim:
        """``reader``'s turn in ``curs``'s transaction (waiting for its lock unless told the
        caller holds it)."""
        if lock:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (reader,))
        return Claim(self._db, curs, reader)

    def forget(self, curs: Cursor[DictRow], reader: str) -> None:
        """Remove ``reader``'s position (it starts from zero again)."""
        curs.execute(
            SQL("DELETE FROM {}.{} WHERE application_name = %s").format(
                Identifier(self._db.schema), Identifier(self._db.settings.tracking_table)
            ),
            (reader,),
        )


def _like(prefix: str) -> str:
    """A ``LIKE`` pattern of what starts with ``prefix`` (its wildcards escaped)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

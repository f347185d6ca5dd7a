"""Append and read one aggregate's events on the library's application recorder.

Optimistic concurrency: an append names the version it expects the aggregate to be at; its
events take the next versions. The table's primary key (aggregate id, version) refuses a second
writer that expected the same version, and a version check in the same transaction refuses an
expected version ahead of the stored one; both raise :class:`ConcurrencyConflict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
    Tracking,
)

from trading.store.aggregates import Versioned, numbered
from trading.store.codec import EventCodec
from trading.store.database import Database
from trading.store.errors import ConcurrencyConflict, StoreUnavailableError

E = TypeVar("E")

Unavailable = (InterfaceError, OperationalError)
"""The library's errors for a database that cannot be reached."""


class EventStore(Generic[E]):
    """One aggregate stream at a time, over the shared notification log."""

    def __init__(self, database: Database, codec: EventCodec[E]) -> None:
        self._db = database
        self._codec = codec
        self._recorder = database.events

    def append(
        self,
        aggregate_id: str,
        expected_version: int,
        events: Sequence[E],
        tracking: Tracking | None = None,
    ) -> list[int]:
        """Store ``events`` as the versions after ``expected_version``, atomically; return
        their notification ids (their positions in the log the outbox publishes). With
        ``tracking``, the reader's position moves in the same transaction
        (:class:`~trading.store.errors.AlreadyTracked` when it would not move forward)."""
        stored = [self.stored(item) for item in numbered(aggregate_id, expected_version, events)]
        expected = (aggregate_id, expected_version)
        try:
            ids = self._recorder.insert_events(stored, expected=expected, tracking=tracking)
        except IntegrityError:
            raise ConcurrencyConflict(aggregate_id, expected_version) from None
        except Unavailable as exc:
            raise StoreUnavailableError(f"append to {aggregate_id!r} failed: {exc}") from None
        return list(ids or ())

    def read(
        self,
        aggregate_id: str,
        after_version: int = 0,
        *,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Versioned[E]]:
        """The aggregate's events after ``after_version``, in order (the newest first with
        ``newest_first``), at most ``limit`` of them (None: all)."""
        try:
            rows = self._recorder.select_events(
                aggregate_id, gt=after_version or None, desc=newest_first, limit=limit
            )
        except Unavailable as exc:
            raise StoreUnavailableError(f"read of {aggregate_id!r} failed: {exc}") from None
        return [self.decoded(row) for row in rows]

    def stored(self, item: Versioned[E]) -> StoredEvent:
        return StoredEvent(
            originator_id=item.aggregate_id,
            originator_version=item.version,
            topic=self._codec.topic(item.event),
            state=self._codec.encode(item.event),
        )

    def decoded(self, row: StoredEvent | Notification) -> Versioned[E]:
        event = self._codec.decode(row.topic, row.state)
        return Versioned(str(row.originator_id), row.originator_version, event)

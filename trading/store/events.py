"""Append and read one aggregate's events on the library's application recorder.

Optimistic concurrency: an append names the version it expects the aggregate to be at; its
events take the next versions. The insert itself checks that every aggregate of the append is
at its expected version, after the table's lock is taken, so it refuses a second writer that
expected the same version and an expected version ahead of the stored one alike, in the
append's one round trip (:mod:`trading.store.recorder`); the table's primary key
(aggregate id, version) stays as a backstop. Each raises :class:`ConcurrencyConflict`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Generic, NamedTuple, TypeVar

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
from trading.store.errors import ConcurrencyConflict, InvalidAppendError, StoreUnavailableError

E = TypeVar("E")


class Append(NamedTuple, Generic[E]):
    """One aggregate's append: its id, the version it is expected at, its new events, and a
    reader's position to move with them (None: none)."""

    aggregate_id: str
    expected_version: int
    events: Sequence[E]
    tracking: Tracking | None = None


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
        return self.append_many([Append(aggregate_id, expected_version, events, tracking)])[0]

    def append_many(self, appends: Sequence[Append[E]]) -> list[list[int]]:
        """Several aggregates' appends (at most one per aggregate) in one transaction, all or
        none: a group commit. Returns each append's notification ids; a conflict names the
        first aggregate not at its version (the primary key's backstop names the only one,
        or none of a group)."""
        stored, expected, trackings = self._rows(appends)
        with _told(expected):
            inserted = self._recorder.insert_events(stored, expected=expected, trackings=trackings)
        return _split(appends, list(inserted or ()))

    def _rows(
        self, appends: Sequence[Append[E]]
    ) -> tuple[list[StoredEvent], list[tuple[str, int]], list[Tracking]]:
        if len({append.aggregate_id for append in appends}) != len(appends):
            raise InvalidAppendError("a group commit holds at most one append per aggregate")
        stored = [
            self.stored(item)
            for append in appends
            for item in numbered(append.aggregate_id, append.expected_version, append.events)
        ]
        expected = [(append.aggregate_id, append.expected_version) for append in appends]
        trackings = [append.tracking for append in appends if append.tracking is not None]
        return stored, expected, trackings

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


@contextlib.contextmanager
def _told(expected: Sequence[tuple[str, int]]) -> Iterator[None]:
    """The library's errors of an append, as ours."""
    try:
        yield
    except IntegrityError:
        raise (
            ConcurrencyConflict(*expected[0])
            if len(expected) == 1
            else ConcurrencyConflict("(one of a group)", 0)
        ) from None
    except Unavailable as exc:
        names = ", ".join(repr(aggregate_id) for aggregate_id, _ in expected)
        raise StoreUnavailableError(f"append to {names} failed: {exc}") from None


def _split(appends: Sequence[Append[E]], ids: Sequence[int]) -> list[list[int]]:
    """Each append's share of ``ids`` (in the appends' order)."""
    split, start = [], 0
    for append in appends:
        split.append(list(ids[start : start + len(append.events)]))
        start += len(append.events)
    return split

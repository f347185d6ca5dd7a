"""The store's shared notification log and the positions its readers track.

Every stored event has a notification id, its place in one log of all aggregates (the
library's application recorder hands the ids out under a table lock, so a reader never passes
a gap that fills later). A reader (the outbox publisher, a projector) records the id it has
handled in the library's tracking table under a name of its own, and resumes after it.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import Notification, Tracking

from trading.store.database import Database
from trading.store.errors import StoreUnavailableError
from trading.store.events import Unavailable

MAX_BATCH = 10_000
"""Notifications one read may return."""


class NotificationLog:
    """Reads of the log and of the tracked positions, each a short call of its own."""

    def __init__(self, database: Database) -> None:
        self._events = database.events
        self._tracking = database.tracking

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

    def position(self, reader: str) -> int:
        """The id ``reader`` has handled up to (0: none yet)."""
        try:
            return self._tracking.max_tracking_id(reader) or 0
        except Unavailable as exc:
            raise StoreUnavailableError(f"reading {reader!r}'s position failed: {exc}") from None

    def advance(self, reader: str, position: int) -> None:
        """Record that ``reader`` has handled the log up to ``position``."""
        try:
            self._tracking.insert_tracking(Tracking(reader, position))
        except Unavailable as exc:
            raise StoreUnavailableError(f"recording {reader!r}'s position failed: {exc}") from None

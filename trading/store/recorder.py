"""The library's PostgreSQL application recorder, with the expected-version check of an
append run inside the append's own transaction, and a reader's position recorded in it too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from trading.store.errors import AlreadyTracked, ConcurrencyConflict


class CheckedRecorder(PostgresApplicationRecorder):
    """``insert_events(events, expected=(aggregate_id, version))`` first checks, in the same
    transaction, that the aggregate is at ``version``: a stored version below it means the
    caller skipped versions, one above it that the caller lost a race. Either raises
    :class:`ConcurrencyConflict` and stores nothing. (A race between the check and the insert
    ends at the primary key, which the caller sees as the same conflict.)

    ``insert_events(events, tracking=Tracking(reader, position))`` also moves ``reader``'s
    position in the tracking table to ``position`` in the same transaction (a consumer of
    ``trading.commands`` records the command it applied with the command's events); a position
    not past the stored one raises :class:`AlreadyTracked` and stores nothing."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str,
        tracking: PostgresTrackingRecorder | None = None,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._tracking = tracking
        self._version_query = SQL(
            "SELECT coalesce(max(originator_version), 0) AS version FROM {}.{} "
            "WHERE originator_id = %s"
        ).format(Identifier(datastore.schema), Identifier(events_table_name))

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        expected: tuple[str, int] | None = kwargs.get("expected")
        if expected is not None:
            aggregate_id, version = expected
            curs.execute(self._version_query, (aggregate_id,))
            row = curs.fetchone()
            if row is None or row["version"] != version:
                raise ConcurrencyConflict(aggregate_id, version)
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            if self._tracking is None:
                raise ValueError("this recorder has no tracking table")
            try:
                self._tracking._insert_tracking(curs, tracking)
            except IntegrityError:
                raise AlreadyTracked(tracking.application_name, tracking.notification_id) from None
        super()._insert_events(curs, stored_events, **kwargs)

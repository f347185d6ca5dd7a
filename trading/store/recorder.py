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

Expected = Sequence[tuple[str, int]]
"""The version each aggregate of an append must be at: ``(aggregate_id, version)`` pairs."""


class CheckedRecorder(PostgresApplicationRecorder):
    """``insert_events(events, expected=[(aggregate_id, version), ...])`` first checks, in the
    same transaction, that each aggregate is at its ``version``: a stored version below it
    means the caller skipped versions, one above it that the caller lost a race. Either raises
    :class:`ConcurrencyConflict` naming the first such aggregate and stores nothing. (A race
    between the check and the insert ends at the primary key, which the caller sees as the
    same conflict.)

    ``insert_events(events, trackings=[Tracking(reader, position), ...])`` also moves each
    ``reader``'s position in the tracking table to ``position`` in the same transaction (a
    consumer of ``trading.commands`` records the command it applied with the command's
    events); a position not past the stored one raises :class:`AlreadyTracked` and stores
    nothing."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str,
        tracking: PostgresTrackingRecorder | None = None,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._tracking = tracking
        self._versions_query = SQL(
            "SELECT originator_id AS id, max(originator_version) AS version FROM {}.{} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(Identifier(datastore.schema), Identifier(events_table_name))

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        expected: Expected = kwargs.get("expected", ())
        if expected:
            curs.execute(self._versions_query, ([aggregate_id for aggregate_id, _ in expected],))
            stored = {row["id"]: row["version"] for row in curs.fetchall()}
            for aggregate_id, version in expected:
                if stored.get(aggregate_id, 0) != version:
                    raise ConcurrencyConflict(aggregate_id, version)
        trackings: Sequence[Tracking] = kwargs.get("trackings", ())
        if trackings and self._tracking is None:
            raise ValueError("this recorder has no tracking table")
        for tracking in trackings:
            try:
                self._tracking._insert_tracking(curs, tracking)  # type: ignore[union-attr]
            except IntegrityError:
                raise AlreadyTracked(tracking.application_name, tracking.notification_id) from None
        super()._insert_events(curs, stored_events, **kwargs)

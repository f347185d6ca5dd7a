"""The library's PostgreSQL application recorder, with the expected-version check of an
append folded into the append's own insert, and a reader's position recorded with it.

One append, as the library's ``PostgresApplicationRecorder.insert_events`` ran it (pipeline
mode, ``conn.transaction()`` inside), with our version check in its ``_insert_events`` hook,
cost **six round trips** (seven with a reader's position), counted on the wire
(``tests/trading/store/turns.py``): psycopg's ``transaction()`` in a pipeline syncs when it
starts (``BEGIN``), and its nested pipelines sync at each end (an empty sync, the ``COMMIT``,
the outer pipeline's last sync); our check's ``SELECT`` was read before the insert, and the
insert was synced to read its ids. Here an append is **one round trip**: ``BEGIN``, the
library's ``SET LOCAL lock_timeout`` and ``LOCK TABLE``, its ``NOTIFY``, one ``INSERT`` that
stores the events only if every aggregate is at its expected version (:data:`APPEND`), and
``COMMIT``, sent as statements in one pipeline with one sync. The check runs after the table's
lock is taken, so no other append can slip between the check and the insert (the primary key
still refuses one that did: the same conflict).

A conflict is not an error of the statement: the statement stores nothing and names the first
aggregate not at its version, the empty transaction commits (its ``NOTIFY`` wakes the log's
readers for nothing: they find no new row), and :class:`ConcurrencyConflict` is raised after
it. An append that carries readers' positions (a consumer of ``trading.commands``) takes two
round trips: the positions are moved and the events inserted and their answers read, then
``COMMIT``, or ``ROLLBACK`` when a position would not move forward (:class:`AlreadyTracked`)
or an aggregate is not at its version. Nothing is ever committed half: an error of the
database (the primary key, a lock timeout, a lost connection) aborts the transaction (the
pipeline skips the ``COMMIT``), which is rolled back before the connection goes back to the
pool. The library's ``insert_events`` could not be kept for this: it commits even when an
error is raised after its sync (it holds the error until its transaction block has ended).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import retry
from psycopg import Connection
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from trading.store.errors import AlreadyTracked, ConcurrencyConflict, StoreError

ATTEMPTS: Final = 10
"""Tries of an append while the database is out of reach (the library's rule for its own
recorders' calls)."""

WAIT_S: Final = 0.2
"""The pause between two tries (the library's)."""

BEGIN: Final = b"BEGIN"
COMMIT: Final = b"COMMIT"
ROLLBACK: Final = b"ROLLBACK"

Expected = Sequence[tuple[str, int]]
"""The version each aggregate of an append must be at: ``(aggregate_id, version)`` pairs."""

APPEND: Final = SQL(
    "WITH expected (id, version, n) AS ("
    " SELECT * FROM unnest(%(ids)s::{id_type}[], %(versions)s::bigint[]) WITH ORDINALITY"
    "), stale AS ("
    " SELECT x.id, x.n FROM expected x WHERE x.version <> coalesce("
    "  (SELECT max(t.originator_version) FROM {schema}.{table} t"
    "   WHERE t.originator_id = x.id), 0)"
    "), stored AS ("
    " INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
    " SELECT originator_id, originator_version, topic, state"
    " FROM unnest(%(events)s::{schema}.{event_type}[])"
    " WHERE NOT EXISTS (SELECT FROM stale)"
    " RETURNING notification_id"
    ") "
    "SELECT notification_id, NULL::text AS stale FROM stored "
    "UNION ALL (SELECT NULL, id::text FROM stale ORDER BY n LIMIT 1) "
    "ORDER BY notification_id"
)
"""An append in one statement: the events, inserted only when no aggregate of ``expected`` is
at another version than the one it names (a missing aggregate is at 0). Its rows: the new
notification ids in order, or else one row naming the first aggregate not at its version."""


class CheckedRecorder(PostgresApplicationRecorder):
    """``insert_events(events, expected=[(aggregate_id, version), ...])`` stores ``events``
    only if each aggregate is at its ``version`` (a stored version below it means the caller
    skipped versions, one above it that the caller lost a race); else it raises
    :class:`ConcurrencyConflict` naming the first such aggregate and stores nothing.

    ``insert_events(events, trackings=[Tracking(reader, position), ...])`` also moves each
    ``reader``'s position in the tracking table to ``position`` in the same transaction (a
    consumer of ``trading.commands`` records the command it applied with the command's
    events); a position not past the stored one raises :class:`AlreadyTracked` and stores
    nothing. Module docstring: the round trips and the transaction."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str,
        tracking: PostgresTrackingRecorder | None = None,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        if tracking is not None and not datastore.single_row_tracking:
            raise ValueError("readers' positions are moved on single-row tracking tables only")
        self._tracking = tracking
        self.append_statement: Composed = APPEND.format(
            schema=Identifier(datastore.schema),
            table=Identifier(events_table_name),
            id_type=Identifier(datastore.originator_id_type),
            event_type=Identifier(self.stored_event_type_name),
        )
        self.notify_statement: Composed = SQL("NOTIFY {0}").format(Identifier(self.channel_name))
        """The library's ``NOTIFY`` of the log's channel."""

    @retry((InterfaceError, OperationalError), max_attempts=ATTEMPTS, wait=WAIT_S)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        expected: Expected = kwargs.get("expected", ())
        trackings: Sequence[Tracking] = kwargs.get("trackings", ())
        plan = self.plan(stored_events, expected, trackings)
        with self.datastore.get_connection() as conn:
            try:
                return self._append(conn, plan)
            finally:  # an error of the database left the transaction aborted: end it here
                if conn.info.transaction_status in OPEN:
                    with contextlib.suppress(psycopg.Error):  # else the pool drops it
                        conn.rollback()

    def append_params(
        self, stored_events: Sequence[StoredEvent], expected: Expected
    ) -> dict[str, Any]:
        """:data:`APPEND`'s parameters."""
        return {
            "ids": [aggregate_id for aggregate_id, _ in expected],
            "versions": [version for _, version in expected],
            "events": [
                self.construct_pg_stored_event(
                    event.originator_id, event.originator_version, event.topic, event.state
                )
                for event in stored_events
            ],
        }

    def move_params(self, tracking: Tracking) -> dict[str, Any]:
        """The parameters of the library's statement that moves ``tracking``'s reader to its
        position (an upsert that gives no row back when the position would not move)."""
        return {
            "application_name": tracking.application_name,
            "notification_id": tracking.notification_id,
        }

    @property
    def move_statement(self) -> Composed:
        assert self._tracking is not None
        return self._tracking.insert_tracking_statement

    def plan(
        self,
        stored_events: Sequence[StoredEvent],
        expected: Expected = (),
        trackings: Sequence[Tracking] = (),
    ) -> AppendPlan:
        """The statements of one append and how their answers are read (:class:`AppendPlan`;
        :meth:`insert_events` sends them on a connection of the library's pool)."""
        if trackings and self._tracking is None:
            raise ValueError("this recorder has no tracking table")
        opening = [Statement(BEGIN)]
        locks = cast("list[Sent]", self.lock_table_statements)  # the library's: SQL, Composed
        opening += [Statement(query, prepare=True) for query in locks]
        opening.append(Statement(self.notify_statement))
        return AppendPlan(
            opening=tuple(opening),
            moves=tuple(
                Statement(self.move_statement, self.move_params(tracking), prepare=True)
                for tracking in trackings
            ),
            insert=Statement(
                self.append_statement, self.append_params(stored_events, expected), prepare=True
            ),
            expected=expected,
            trackings=tuple(trackings),
        )

    def _append(self, conn: Connection[DictRow], plan: AppendPlan) -> list[int]:
        # BEGIN and COMMIT as statements: psycopg's transaction() in a pipeline syncs at
        # its start and at each end (three more round trips)
        cursors = [conn.cursor() for _ in range(plan.cursors)]
        answers: Answers | None = None
        with conn.pipeline() as pipeline:
            for n, statement in plan.statements:
                cursors[n].execute(statement.query, statement.params, prepare=statement.prepare)
            if plan.reads_before_end:
                pipeline.sync()
                answers = [cursor.fetchall() for cursor in cursors]
            conn.cursor().execute(plan.end(answers))
        if answers is None:
            answers = [cursor.fetchall() for cursor in cursors]
        return plan.outcome(answers)


OPEN: Final = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
"""A connection's transaction states that an append must end (roll back) before reuse."""

Sent = str | bytes | SQL | Composed
"""What a cursor sends (psycopg's ``Query`` less its templates, which ``execute`` refuses)."""

Answers = list[list[DictRow]]
"""The rows each cursor of an :class:`AppendPlan` got back, by cursor (0: the insert's)."""


@dataclass(frozen=True)
class Statement:
    """One statement of an append, sent in its pipeline."""

    query: Sent
    params: dict[str, Any] | None = None
    prepare: bool = False


@dataclass(frozen=True)
class AppendPlan:
    """One append, sans I/O: the statements to send in one pipeline (:attr:`statements`, each
    with the index of the cursor it goes on), whether the answers are read before the end
    (:attr:`reads_before_end`: with readers' positions), the statement that ends it
    (:meth:`end`) and what the answers mean (:meth:`outcome`). The shell
    (:meth:`CheckedRecorder.insert_events`) only sends and reads."""

    opening: tuple[Statement, ...]
    """``BEGIN``, the library's lock statements and ``NOTIFY`` (their answers are not read)."""
    moves: tuple[Statement, ...]
    """One upsert a reader's position, each on a cursor of its own."""
    insert: Statement
    """:data:`APPEND`, on cursor 0 (after the opening statements: its rows are the ones read)."""
    expected: Expected
    trackings: tuple[Tracking, ...]

    @property
    def cursors(self) -> int:
        return 1 + len(self.moves)

    @property
    def statements(self) -> list[tuple[int, Statement]]:
        return [
            *((0, statement) for statement in self.opening),
            *((n, statement) for n, statement in enumerate(self.moves, 1)),
            (0, self.insert),
        ]

    @property
    def reads_before_end(self) -> bool:
        """True: sync and read the answers before the end (a refused position rolls back)."""
        return bool(self.moves)

    def end(self, answers: Answers | None) -> bytes:
        """``COMMIT``, or ``ROLLBACK`` when the answers read before the end refuse the append
        (a conflict alone commits the empty transaction)."""
        return COMMIT if answers is None or self.refusal(answers) is None else ROLLBACK

    def refusal(self, answers: Answers) -> StoreError | None:
        rows, *moved = answers
        return conflict(rows, self.expected) or not_moved(
            [next(iter(one), None) for one in moved], self.trackings
        )

    def outcome(self, answers: Answers) -> list[int]:
        """The new notification ids; raises the refusal the answers name."""
        refusal = self.refusal(answers)
        if refusal is not None:
            raise refusal
        return [int(row["notification_id"]) for row in answers[0]]


def conflict(rows: Sequence[DictRow], expected: Expected) -> ConcurrencyConflict | None:
    """The conflict :data:`APPEND`'s ``rows`` name (None: the events are stored)."""
    stale = next((row["stale"] for row in rows if row["stale"] is not None), None)
    if stale is None:
        return None
    versions = {str(aggregate_id): version for aggregate_id, version in expected}
    return ConcurrencyConflict(stale, versions.get(stale, 0))


def not_moved(
    answers: Sequence[DictRow | None], trackings: Sequence[Tracking]
) -> StoreError | None:
    """The first reader whose position did not move (its upsert's answer had no row)."""
    for answer, tracking in zip(answers, trackings, strict=True):
        if answer is None:
            return AlreadyTracked(tracking.application_name, tracking.notification_id)
    return None
